import type { Rate, RateDecision, RateLimiter } from '../contracts/rate-limiter.js';
import { ClosedError, ConfigError } from '../errors.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
  rate: Rate;
}

/** Buckets that refilled completely are swept at most this often: a full bucket is the same as none. */
const SWEEP_INTERVAL_MS = 60_000;

function refill(bucket: Bucket, now: number): void {
  const elapsed = now - bucket.updatedAt;
  if (elapsed > 0) bucket.tokens = Math.min(bucket.rate.limit, bucket.tokens + (elapsed * bucket.rate.limit) / bucket.rate.intervalMs);
  bucket.updatedAt = Math.max(bucket.updatedAt, now);
}

/** The embedded rate limiter: token buckets refilled continuously, in this process. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private nextSweepAt = 0;
  private closed = false;

  /** Takes `tokens` from bucket `key` (full at first), or says how long until they are free. */
  async acquire(key: string, rate: Rate, tokens = 1): Promise<RateDecision> {
    this.assertOpen();
    if (!(Number.isFinite(rate.limit) && rate.limit > 0) || !(Number.isFinite(rate.intervalMs) && rate.intervalMs > 0)) {
      throw new ConfigError(
        `rate limit of "${key}": limit and intervalMs must be positive numbers (got ${rate.limit} per ${rate.intervalMs}ms)`,
      );
    }
    if (!(tokens > 0) || tokens > rate.limit) {
      throw new ConfigError(
        `rate limit of "${key}": cannot take ${tokens} tokens from a bucket of ${rate.limit}; take between 1 and ${rate.limit}`,
      );
    }
    const now = Date.now();
    this.sweepNowAndThen(now);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: rate.limit, updatedAt: now, rate };
      this.buckets.set(key, bucket);
    } else {
      refill(bucket, now);
      bucket.rate = rate;
      bucket.tokens = Math.min(bucket.tokens, rate.limit);
    }
    if (bucket.tokens >= tokens) {
      bucket.tokens -= tokens;
      return { allowed: true, retryAfterMs: 0, remaining: Math.floor(bucket.tokens) };
    }
    const retryAfterMs = Math.max(1, Math.ceil(((tokens - bucket.tokens) * rate.intervalMs) / rate.limit));
    return { allowed: false, retryAfterMs, remaining: Math.floor(bucket.tokens) };
  }

  /** Forgets every bucket; later calls throw ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.buckets.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory rate limiter');
  }

  private sweepNowAndThen(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [key, bucket] of this.buckets) {
      refill(bucket, now);
      if (bucket.tokens >= bucket.rate.limit) this.buckets.delete(key);
    }
  }
}
