import { ExitCode, StemError } from '../sdk/errors.js';

/**
 * Prints an error the way every command does: one line on stderr naming what was wrong and what
 * to do (the stack only with --verbose), and returns the exit status to use.
 */
export function reportError(error: unknown, stderr: NodeJS.WritableStream, verbose: boolean): number {
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`stem: ${message.split('\n')[0]}\n`);
  if (verbose && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`);
  if (error instanceof StemError) return error.exitCode;
  return ExitCode.failure;
}
