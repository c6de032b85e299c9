import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/stem.js', import.meta.url));

/** What a `stem` run printed and how it exited. */
export interface StemRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `stem` binary in a child process, as a user would. */
export function runStem(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<StemRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: options.cwd ?? repoRoot, env: { ...process.env, NO_COLOR: '1', ...options.env }, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A `stem` process left running (a worker, Beat), with what it printed so far. */
export interface RunningStem {
  child: import('node:child_process').ChildProcess;
  output: () => string;
  /** Resolves when the output matches `pattern`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts the real `stem` binary and leaves it running. */
export async function startStem(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunningStem> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd ?? repoRoot, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return {
    child,
    output: () => output,
    async waitForOutput(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null) throw new Error(`stem exited (${child.exitCode}) before printing ${pattern}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`stem did not print ${pattern} within ${timeoutMs}ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
