import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userEnv } from './node-lines.js';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** What a finished process printed and how it exited. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to the end (default limit: 5 minutes, for a pack that builds). */
export function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** A process left running in its own process group (npx starts the real one as its child). */
export interface Running {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches; throws when the process exits first or time runs out. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM to the whole group; resolves with the exit code. */
  stop(): Promise<number>;
}

/** Starts `command args` in a new process group. */
export function start(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Running {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return {
    child,
    output: () => output,
    async waitFor(pattern, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`the process exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`the process did not print ${pattern} within ${timeoutMs}ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
      return exited;
    },
  };
}

/** The version of a package installed in the repository (so an offline install finds it in the npm cache). */
export function repoVersion(name: string): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A temporary project that installed the packed stem tarball, as a user's would. */
export interface ConsumerProject {
  dir: string;
  tarball: string;
  /** The tarball's file list, from `npm pack --json`. */
  files: string[];
  /** Writes a file of the project (creating directories). */
  write(path: string, text: string): void;
  /** `npm install` more packages into the project, offline-friendly. */
  install(packages: string[]): Promise<Run>;
  remove(): void;
}

/**
 * better-sqlite3's install script asks prebuild-install for a prebuilt binary and compiles from source
 * when none can be downloaded (this machine reaches only the npm registry: ~100 s of CPU per install).
 * A user's machine downloads that prebuild; the consumer project gets the same from a local prebuild
 * made of the repository's own compiled binary (same version, same Node), through prebuild-install's
 * `npm_config_better_sqlite3_local_prebuilds`. The install script still runs; only the download is
 * local. Without a compiled binary in the repository, nothing is set and the install compiles.
 */
async function localPrebuilds(dir: string): Promise<NodeJS.ProcessEnv> {
  const module = join(repoRoot, 'node_modules', 'better-sqlite3');
  if (!existsSync(join(module, 'build', 'Release', 'better_sqlite3.node'))) return {};
  const prebuilds = join(dir, '.prebuilds');
  mkdirSync(prebuilds, { recursive: true });
  const name = `better-sqlite3-v${repoVersion('better-sqlite3')}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const packed = await run('tar', ['-czf', join(prebuilds, name), '-C', module, 'build/Release/better_sqlite3.node'], {
    cwd: dir,
    env: process.env,
  });
  return packed.code === 0 ? { npm_config_better_sqlite3_local_prebuilds: prebuilds } : {};
}

const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

/**
 * Packs the repository (`npm pack` runs prepack, which builds dist/) and installs the tarball, with
 * `extra` packages, into a fresh `"type": "module"` project in the system temp directory.
 */
export async function createConsumerProject(extra: string[] = []): Promise<ConsumerProject> {
  const dir = mkdtempSync(join(tmpdir(), 'stem-consumer-'));
  const env = userEnv(process.execPath, await localPrebuilds(dir));
  const packed = await run('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', dir], { cwd: repoRoot, env });
  if (packed.code !== 0) throw new Error(`npm pack failed (${packed.code}):\n${packed.stderr}\n${packed.stdout}`);
  // prepack's build output comes before the JSON on stdout.
  const json = packed.stdout.slice(packed.stdout.indexOf('[\n'));
  const [report] = JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(dir, report!.filename);
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'stem-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  const project: ConsumerProject = {
    dir,
    tarball,
    files: report!.files.map((file) => file.path),
    write(path, text) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    },
    install: (packages) => run('npm', [...NPM_INSTALL, ...packages], { cwd: dir, env }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  const installed = await project.install([tarball, ...extra]);
  if (installed.code !== 0) {
    project.remove();
    throw new Error(`npm install of ${tarball} failed (${installed.code}):\n${installed.stderr}\n${installed.stdout}`);
  }
  return project;
}
