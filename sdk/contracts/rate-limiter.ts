/** A rate: `limit` tokens per `intervalMs`. */
export interface Rate {
  /** Tokens per interval. */
  limit: number;
  /** The interval in ms. */
  intervalMs: number;
}

/** The answer of the limiter. */
export interface RateDecision {
  /** The caller may proceed. */
  allowed: boolean;
  /** When denied, how long until a token is free (ms); 0 when allowed. */
  retryAfterMs: number;
  /** Tokens left after this call. */
  remaining: number;
}

/** A token bucket shared by every process that uses the same store. */
export interface RateLimiter {
  /** Takes `tokens` (default 1) from the bucket `key` refilled at `rate`. */
  acquire(key: string, rate: Rate, tokens?: number): Promise<RateDecision>;
  /** Releases connections. */
  close(): Promise<void>;
}
