import { PassThrough } from 'node:stream';
import { main } from '../../cli/main.js';

/** What one in-process run of the CLI printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the stem CLI inside this test process through `main()` (the binary's own entry point), with
 * `env` set for the run only and `stdin` as input: commands that need no process of their own run
 * in milliseconds instead of a node start-up each. STEM_* variables of the caller's shell are
 * cleared so that only `env` counts.
 */
export async function runInProcess(argv: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<CliRun> {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith('STEM_') && !key.startsWith('STEM_TEST_')) delete process.env[key];
  Object.assign(process.env, options.env ?? {});
  const stdin = new PassThrough();
  stdin.end(options.stdin ?? '');
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  try {
    const code = await main(argv, {
      stdin: stdin as unknown as NodeJS.ReadStream,
      stdout: stdout as unknown as NodeJS.WriteStream,
      stderr: stderr as unknown as NodeJS.WriteStream,
      env: process.env,
      colorDepth: 1,
    });
    return { code, stdout: out, stderr: err };
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}
