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
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag}: ${JSON.stringify(text)} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
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
  return text.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
}
