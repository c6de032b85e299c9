import { parseDuration, type Duration } from './duration.js';
import { Retry, Unrecoverable } from './errors.js';

/** Matches errors: by class, by name/code string, or by a predicate. */
export type ErrorMatcher = Array<(new (...args: any[]) => Error) | string> | ((error: unknown) => boolean);

/** How a task's retries are spaced and which errors are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (overrides the task's maxRetries). */
  maxRetries?: number;
  /** `exponential` (default): delay × 2^retry; `linear`: delay × (retry+1); `fixed`: delay. */
  backoff?: 'exponential' | 'linear' | 'fixed';
  /** The base delay (default 1s). */
  delayMs?: Duration;
  /** The cap (default 10m). */
  maxDelayMs?: Duration;
  /** Randomise each delay between half and all of it, so retries do not stampede (default true). */
  jitter?: boolean;
  /** Only these errors are retried (default: all). */
  retryOn?: ErrorMatcher;
  /** These errors fail at once. */
  dontRetryOn?: ErrorMatcher;
}

/** What to do after a failed attempt. */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: 'max-retries-exhausted' | 'unrecoverable' };

const DEFAULT_DELAY_MS = 1_000;
const DEFAULT_MAX_DELAY_MS = 600_000;

function matches(matcher: ErrorMatcher, error: unknown): boolean {
  if (typeof matcher === 'function') return matcher(error);
  return matcher.some((entry) => {
    if (typeof entry === 'string') {
      const record = error as { name?: unknown; code?: unknown } | null;
      return record?.name === entry || record?.code === entry;
    }
    return error instanceof entry;
  });
}

/** The delay before retry number `retry` (0 for the first retry) under `policy`, without jitter. */
export function backoffDelay(policy: RetryPolicy | undefined, retry: number): number {
  const base = parseDuration(policy?.delayMs ?? DEFAULT_DELAY_MS, 'retryPolicy.delayMs');
  const cap = parseDuration(policy?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, 'retryPolicy.maxDelayMs');
  const backoff = policy?.backoff ?? 'exponential';
  const raw = backoff === 'fixed' ? base : backoff === 'linear' ? base * (retry + 1) : base * 2 ** retry;
  return Math.min(cap, raw);
}

/**
 * Decides whether a failed attempt is retried and after how long. `attempt` is the attempt that
 * failed (0 for the first); `maxRetries` the envelope's.
 */
export function decideRetry(
  error: unknown,
  attempt: number,
  maxRetries: number,
  policy: RetryPolicy | undefined,
  random = Math.random,
): RetryDecision {
  if (error instanceof Unrecoverable) return { retry: false, reason: 'unrecoverable' };
  if (!(error instanceof Retry)) {
    if (policy?.dontRetryOn && matches(policy.dontRetryOn, error)) return { retry: false, reason: 'unrecoverable' };
    if (policy?.retryOn && !matches(policy.retryOn, error)) return { retry: false, reason: 'unrecoverable' };
  }
  if (attempt >= maxRetries) return { retry: false, reason: 'max-retries-exhausted' };
  if (error instanceof Retry && error.countdownMs !== undefined) return { retry: true, delayMs: error.countdownMs };
  const delay = backoffDelay(policy, attempt);
  const jittered = policy?.jitter === false ? delay : delay / 2 + random() * (delay / 2);
  return { retry: true, delayMs: Math.round(jittered) };
}
