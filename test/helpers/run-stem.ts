import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/stem.js', import.meta.url));

/** What a finished process printed and how it exited. */
export interface StemRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of a child process: extra environment, working directory, time limit. */
export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs `node …nodeArgs` to the end, with NO_COLOR set, from the repo root by default. */
export function runNode(nodeArgs: string[], options: ProcessOptions = {}): Promise<StemRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      nodeArgs,
      { cwd: options.cwd ?? repoRoot, env: { ...process.env, NO_COLOR: '1', ...options.env }, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs the real `stem` binary in a child process, as a user would. */
export function runStem(args: string[], options: ProcessOptions = {}): Promise<StemRun> {
  return runNode([bin, ...args], options);
}

/** Runs a TypeScript script through tsx, as `npx tsx script` does. */
export function runScript(script: string, args: string[] = [], options: ProcessOptions = {}): Promise<StemRun> {
  return runNode(['--import', 'tsx', script, ...args], options);
}

/** A process left running (a worker, Beat), with what it printed so far. */
export interface RunningStem {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output matches `pattern`; throws if the process exits first or time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts `node …nodeArgs` and leaves it running. */
export function startNode(nodeArgs: string[], options: ProcessOptions = {}): RunningStem {
  const child = spawn(process.execPath, nodeArgs, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return {
    child,
    output: () => output,
    async waitForOutput(pattern, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null) throw new Error(`the process exited (${child.exitCode}) before printing ${pattern}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`the process did not print ${pattern} within ${timeoutMs}ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Starts the real `stem` binary and leaves it running. */
export async function startStem(args: string[], options: ProcessOptions = {}): Promise<RunningStem> {
  return startNode([bin, ...args], options);
}

/** Starts `npx tsx script` and leaves it running. */
export async function startScript(script: string, options: ProcessOptions = {}): Promise<RunningStem> {
  return startNode(['--import', 'tsx', script], options);
}
