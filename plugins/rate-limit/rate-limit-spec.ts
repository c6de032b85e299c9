import type { Rate } from '../../sdk/contracts/rate-limiter.js';
import { ConfigError } from '../../sdk/errors.js';

/** A task rate: `'10/s'`, `'100/m'`, `'1000/h'` (also `/d`, and decimals such as `'0.5/s'`). */
export type RateLimitSpec = `${number}/${'s' | 'm' | 'h' | 'd'}`;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SPEC = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(s|m|h|d)\s*$/;

/**
 * Turns `'10/s'` into the limiter's rate: a bucket of one token refilled every 100 ms. One token
 * (as Celery does) paces starts evenly, so no window of the unit ever sees more than the limit
 * plus one, where a full-size bucket would allow twice the limit across a window boundary.
 */
export function parseRateLimit(spec: unknown, where: string): Rate {
  const match = typeof spec === 'string' ? SPEC.exec(spec) : null;
  const count = Number(match?.[1]);
  if (match === null || !(count > 0)) {
    throw new ConfigError(`${where}: ${JSON.stringify(spec)} is not a rate; use tasks per unit like '10/s', '100/m' or '1000/h'`);
  }
  return { limit: 1, intervalMs: UNIT_MS[match[2]!]! / count };
}
