import type { Rate, RateDecision, RateLimiter } from '../../sdk/contracts/rate-limiter.js';
import { ConfigError } from '../../sdk/errors.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

/**
 * The SQLite rate limiter: a token bucket per key, refilled continuously; read, decided and written
 * in one `BEGIN IMMEDIATE` transaction, so that every process on the file draws from the same bucket.
 */
export class SqliteRateLimiter extends SqliteService implements RateLimiter {
  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite rate limiter');
  }

  /** Takes `tokens` from bucket `key` (full at first), or says how long until they are free. */
  async acquire(key: string, rate: Rate, tokens = 1): Promise<RateDecision> {
    this.assertOpen();
    const { limit, intervalMs } = rate;
    if (!(Number.isFinite(limit) && limit > 0) || !(Number.isFinite(intervalMs) && intervalMs > 0)) {
      throw new ConfigError(`rate limit of "${key}": limit and intervalMs must be positive numbers (got ${limit} per ${intervalMs}ms)`);
    }
    if (!(tokens > 0) || tokens > limit) {
      throw new ConfigError(`rate limit of "${key}": cannot take ${tokens} tokens from a bucket of ${limit}; take between 1 and ${limit}`);
    }
    const connection = this.connection;
    const { left, allowed } = connection.immediate(() => {
      const now = Date.now();
      const bucket = connection
        .prepare('select tokens, refilled_at from stem_rate_buckets where namespace = ? and key = ?')
        .get(this.namespace, key) as { tokens: number; refilled_at: number } | undefined;
      const current =
        bucket === undefined ? limit : Math.min(limit, bucket.tokens + (Math.max(0, now - bucket.refilled_at) * limit) / intervalMs);
      const allowed = current >= tokens;
      const left = allowed ? current - tokens : current;
      connection
        .prepare(
          `insert into stem_rate_buckets (namespace, key, tokens, refilled_at) values (?, ?, ?, ?)
          on conflict (namespace, key) do update set tokens = excluded.tokens,
            refilled_at = max(stem_rate_buckets.refilled_at, excluded.refilled_at)`,
        )
        .run(this.namespace, key, left, now);
      return { left, allowed };
    });
    if (allowed) return { allowed: true, retryAfterMs: 0, remaining: Math.floor(left) };
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(((tokens - left) * intervalMs) / limit)), remaining: Math.floor(left) };
  }
}
