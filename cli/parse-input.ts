import { readFile } from 'node:fs/promises';
import { parseDuration } from '../sdk/duration.js';
import { UsageError } from '../sdk/errors.js';

/** Parses a flag's JSON value, or throws a usage error naming the flag and the fault. */
export function parseJsonFlag(flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag}: not valid JSON (${(error as Error).message}); e.g. ${flag} '{"customerId":42}'`);
  }
}

/** Parses a JSON object of strings (headers). */
export function parseHeadersFlag(flag: string, text: string | undefined): Record<string, string> | undefined {
  const value = parseJsonFlag(flag, text);
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new UsageError(`${flag}: must be a JSON object of strings, e.g. ${flag} '{"tenant":"acme"}'`);
  }
  return value as Record<string, string>;
}

/** Parses a whole-number flag within bounds. */
export function parseIntegerFlag(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined;
  // Digits only: Number() would also take 1e9, 0x10 and ' 7 '.
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${flag}: ${JSON.stringify(text)} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`,
    );
  }
  return value;
}

/** Parses a duration flag (`30s`, `5m`, `1500`). */
export function parseDurationFlag(flag: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text, flag);
}

/** Splits a comma-separated list flag (`a,b`); an explicitly empty value is an empty list (none), never "all". */
export function parseListFlag(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Parses task arguments: a JSON object, since a task's arguments are named fields. */
export function parseArgsObject(source: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source}: not valid JSON (${(error as Error).message}); e.g. --args '{"customerId":42}'`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new UsageError(`${source}: task arguments must be a JSON object of named fields, got ${got}; e.g. --args '{"customerId":42}'`);
  }
  return value as Record<string, unknown>;
}

/** Reads all of a stream (stdin for `--args -`). */
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The task arguments of `--args JSON`, `--args -` (stdin) or `--args-file FILE` (`-` for stdin):
 * large arguments exceed the OS limit on a command line, a file or a pipe has none.
 */
export async function readArgsFlag(
  args: string | undefined,
  argsFile: string | undefined,
  stdin: NodeJS.ReadableStream,
): Promise<Record<string, unknown>> {
  if (args !== undefined && argsFile !== undefined) throw new UsageError('--args and --args-file: give one of them, not both');
  if (argsFile !== undefined) {
    if (argsFile === '-') return parseArgsObject('--args-file - (stdin)', await readAll(stdin));
    let text: string;
    try {
      text = await readFile(argsFile, 'utf8');
    } catch (error) {
      throw new UsageError(
        `--args-file: cannot read ${argsFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give a JSON ` +
          `file's path, or - for stdin`,
      );
    }
    return parseArgsObject(`--args-file ${argsFile}`, text);
  }
  if (args === '-') return parseArgsObject('--args - (stdin)', await readAll(stdin));
  return args === undefined ? {} : parseArgsObject('--args', args);
}
