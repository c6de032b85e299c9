/**
 * Workload 9, CLI start-up: the compiled `stem` binary as a user's shell starts it, measured as
 * processes from spawn. `stem --help` from launch to exit, and `stem worker start` (a
 * stem.config.mjs with the Redis plugin) from launch to its "ready" line. Both run from a temp
 * project whose node_modules/stem links to this checkout, with STEM_CLI_FROM=dist, so no
 * TypeScript loader is involved; dist/ is rebuilt first when a source is newer.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultRow } from './bench-report.js';
import { median } from './stats.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const bin = join(repoRoot, 'bin', 'stem.js');

/** The targets on this 2-core machine, in ms. */
const HELP_TARGET_MS = 250;
const WORKER_READY_TARGET_MS = 1_000;

/** The newest modification time under `dir` of files ending in `.ts` (0 when none). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than a source of the package. */
function ensureBuild(log: (message: string) => void): void {
  const built = (() => {
    try {
      return statSync(join(repoRoot, 'dist', 'cli', 'main.js')).mtimeMs;
    } catch {
      return 0;
    }
  })();
  const sources = Math.max(...['sdk', 'plugins', 'cli'].map((dir) => newestSource(join(repoRoot, dir))));
  if (built > sources) return;
  log('9 CLI start-up: building dist/ (npm run build)');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Milliseconds from spawning `node bin/stem.js args` until `until` (exit, or a line matching). */
function timeProcess(args: string[], cwd: string, env: NodeJS.ProcessEnv, until: 'exit' | RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let readyAt: number | undefined;
    const onData = (chunk: Buffer): void => {
      output += chunk;
      if (until !== 'exit' && readyAt === undefined && until.test(output)) {
        readyAt = performance.now() - began;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (until === 'exit') {
        if (code === 0) resolve(performance.now() - began);
        else reject(new Error(`stem ${args.join(' ')} exited ${code}: ${output.slice(-500)}`));
      } else if (readyAt !== undefined) resolve(readyAt);
      else reject(new Error(`stem ${args.join(' ')} exited ${code} before ${until}: ${output.slice(-500)}`));
    });
  });
}

/** The rows of workload 9 before measuring (also the error rows when it fails); the peer is the target. */
export function cliStartupRowShapes(): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  const base = {
    workload: '9 CLI start-up, compiled, as processes',
    unit: 'ms',
    better: 'lower' as const,
    peerName: 'target',
    target: { op: '<=' as const, value: 1 },
  };
  return [
    { ...base, metric: `stem --help, launch → exit (target ${HELP_TARGET_MS} ms)` },
    { ...base, metric: `stem worker start (redis), launch → ready (target ${WORKER_READY_TARGET_MS} ms)` },
  ];
}

/** Runs workload 9; returns its rows (Stem against the target, so "met" reads off the table). */
export async function cliStartupRows(options: { runs: number; redisUrl: string; log: (message: string) => void }): Promise<ResultRow[]> {
  const { log } = options;
  ensureBuild(log);
  const project = mkdtempSync(join(tmpdir(), 'stem-bench-cli-'));
  try {
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(repoRoot, join(project, 'node_modules', 'stem'), 'dir');
    const namespace = `bench-cli-${process.pid}`;
    writeFileSync(
      join(project, 'stem.config.mjs'),
      `import { defineConfig, defineTask } from 'stem';\nimport { redis } from 'stem/plugins/redis';\n` +
        `export default defineConfig({ plugins: [redis({ url: ${JSON.stringify(options.redisUrl)}, namespace: ${JSON.stringify(namespace)} })], tasks: [defineTask({ name: 'noop', handler: async () => null })] });\n`,
    );
    const helpDir = join(project, 'empty');
    mkdirSync(helpDir);
    const env: NodeJS.ProcessEnv = { ...process.env, STEM_CLI_FROM: 'dist', NO_COLOR: '1' };
    for (const key of Object.keys(env)) if (key === 'NODE_OPTIONS' || (key.startsWith('STEM_') && key !== 'STEM_CLI_FROM')) delete env[key];

    const samples = Math.max(5, options.runs * 3);
    const bare: number[] = [];
    const help: number[] = [];
    const ready: number[] = [];
    // One warm-up of each (file cache), then the measured samples, interleaved.
    for (let run = 0; run <= samples; run++) {
      const nodeOnly = await new Promise<number>((resolve) => {
        const began = performance.now();
        spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).on('exit', () => resolve(performance.now() - began));
      });
      const helpMs = await timeProcess(['--help'], helpDir, env, 'exit');
      const readyMs = await timeProcess(['worker', 'start'], project, env, /ready on .*consuming/);
      if (run === 0) continue;
      bare.push(nodeOnly);
      help.push(helpMs);
      ready.push(readyMs);
    }
    log(
      `9 CLI start-up (${samples} samples): node -e 0 median ${median(bare).toFixed(0)} ms; stem --help median ${median(help).toFixed(0)} ms ` +
        `(min ${Math.min(...help).toFixed(0)}); worker ready median ${median(ready).toFixed(0)} ms (min ${Math.min(...ready).toFixed(0)})`,
    );
    const [helpRow, readyRow] = cliStartupRowShapes();
    return [
      { ...helpRow!, stem: median(help), peer: HELP_TARGET_MS, runs: help.length },
      { ...readyRow!, stem: median(ready), peer: WORKER_READY_TARGET_MS, runs: ready.length },
    ];
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}
