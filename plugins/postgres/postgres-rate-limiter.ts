import { sql } from 'kysely';
import type { Rate, RateDecision, RateLimiter } from '../../sdk/contracts/rate-limiter.js';
import { ConfigError } from '../../sdk/errors.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

/**
 * The Postgres rate limiter: a token bucket per key, refilled continuously on the server's clock.
 * One `INSERT … ON CONFLICT DO UPDATE` refills, decides and takes, under the row lock, so that
 * every process sharing the database draws from the same bucket.
 */
export class PostgresRateLimiter extends PostgresService implements RateLimiter {
  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres rate limiter');
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
    const nowMs = sql`(extract(epoch from now()) * 1000)::float8`;
    const current = sql`least(${limit}::float8,
      b.tokens + greatest(0, ${nowMs} - b.refilled_at) * ${limit}::float8 / ${intervalMs}::float8)`;
    const { rows } = await this.connection.run(() =>
      sql<{ tokens: number; allowed: boolean }>`insert into ${this.table('stem_rate_buckets')} as b
          (namespace, key, tokens, refilled_at, allowed)
        values (${this.namespace}, ${key}, ${limit}::float8 - ${tokens}::float8, ${nowMs}, true)
        on conflict (namespace, key) do update set
          tokens = case when ${current} >= ${tokens}::float8 then ${current} - ${tokens}::float8 else ${current} end,
          refilled_at = greatest(b.refilled_at, ${nowMs}),
          allowed = ${current} >= ${tokens}::float8
        returning tokens, allowed`.execute(this.connection.db),
    );
    const row = rows[0]!;
    if (row.allowed) return { allowed: true, retryAfterMs: 0, remaining: Math.floor(row.tokens) };
    const retryAfterMs = Math.max(1, Math.ceil(((tokens - row.tokens) * intervalMs) / limit));
    return { allowed: false, retryAfterMs, remaining: Math.floor(row.tokens) };
  }
}
