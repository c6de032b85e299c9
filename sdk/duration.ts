import { InvalidDurationError } from './errors.js';

/** A duration: milliseconds as a number, or a string like `500ms`, `5s`, `5m`, `1h`, `1d`. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;

/** Parses a {@link Duration} into milliseconds; `where` names the option in the error message. */
export function parseDuration(value: Duration, where = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidDurationError(value, where);
    return value;
  }
  if (typeof value !== 'string') throw new InvalidDurationError(value, where);
  const match = DURATION_PATTERN.exec(value);
  if (!match) throw new InvalidDurationError(value, where);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!);
}

/** A point in time: a Date, an ISO-8601 string, or a {@link Duration} from now. */
export type When = Date | Duration;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;

/** Resolves a {@link When} to epoch milliseconds. */
export function resolveWhen(value: When, now: number, where = 'time'): number {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new InvalidDurationError(String(value), where);
    return ms;
  }
  if (typeof value === 'string' && ISO_DATE.test(value)) {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new InvalidDurationError(value, where);
    return ms;
  }
  return now + parseDuration(value, where);
}

/** Formats milliseconds for people: `850ms`, `1.2s`, `3m 5s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1_000);
  return seconds === 0 ? `${minutes}m` : `${minutes}m ${seconds}s`;
}
