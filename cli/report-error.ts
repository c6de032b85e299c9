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

/**
 * The `--json` form of {@link reportError}: `{"error":{"code","message","exitCode"}}` on stdout, so a
 * script reading a command's JSON gets JSON whatever happened (the exit status still tells).
 */
export function reportErrorAsJson(error: unknown, stdout: NodeJS.WritableStream, verbose: boolean): number {
  const message = error instanceof Error ? error.message : String(error);
  const exitCode = error instanceof StemError ? error.exitCode : ExitCode.failure;
  const code = error instanceof StemError ? error.code : 'internal';
  const document: { error: Record<string, unknown> } = { error: { code, message: message.split('\n')[0], exitCode } };
  if (verbose && error instanceof Error && error.stack) document.error.stack = error.stack;
  stdout.write(`${JSON.stringify(document)}\n`);
  return exitCode;
}
