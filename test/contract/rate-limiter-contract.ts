import type { Test } from 'tap';
import type { Rate, RateLimiter } from '../../sdk/contracts/rate-limiter.js';
import { CLOCK_SLACK_MS, type CaseBody, type ContractFactory, retryOnStall, runContract, STALLED, sleep, uniqueName } from './support.js';

/**
 * Three per 3 minutes: a token refills every minute, so that no stall of the machine between the calls of a case lets
 * in a refill the case did not wait for (with a token every 500 ms, a stall of half a second did).
 */
const RATE: Rate = { limit: 3, intervalMs: 180_000 };
/** Three per 1.5 s, for the case that waits for a refill. */
const FAST_RATE: Rate = { limit: 3, intervalMs: 1_500 };

const cases: ReadonlyArray<readonly [string, CaseBody<RateLimiter>]> = [
  [
    'a bucket allows its limit, then denies with the time until a token is free',
    async (t, limiter) => {
      const key = uniqueName('rate');
      const decisions = [];
      for (let i = 0; i < RATE.limit; i++) decisions.push(await limiter.acquire(key, RATE));
      t.same(
        decisions.map((d) => d.allowed),
        [true, true, true],
      );
      t.same(
        decisions.map((d) => d.retryAfterMs),
        [0, 0, 0],
        'no wait when allowed',
      );
      t.same(
        decisions.map((d) => d.remaining),
        [2, 1, 0],
        'remaining counts down',
      );
      const denied = await limiter.acquire(key, RATE);
      t.equal(denied.allowed, false);
      t.ok(denied.retryAfterMs > 0, 'a denial says how long to wait');
      t.ok(denied.retryAfterMs <= RATE.intervalMs / RATE.limit, 'no longer than one token takes to refill');
      t.equal(denied.remaining, 0);
    },
  ],
  [
    'separate keys have separate buckets',
    async (t, limiter) => {
      const busy = uniqueName('rate');
      for (let i = 0; i < RATE.limit; i++) await limiter.acquire(busy, RATE);
      t.equal((await limiter.acquire(busy, RATE)).allowed, false);
      t.equal((await limiter.acquire(uniqueName('rate'), RATE)).allowed, true, 'another key is unaffected');
    },
  ],
  [
    'after the wait it was told, a denied caller is allowed again',
    async (t, limiter) => {
      // The bucket must be emptied within one refill (500 ms). A stall of the machine can let a token refill first; that is
      // seen from the clock, and the case runs again, on a fresh key, with a slower rate.
      await retryOnStall(t, FAST_RATE.intervalMs, async (intervalMs, lastTry) => {
        const rate: Rate = { ...FAST_RATE, intervalMs };
        const key = uniqueName('rate');
        const started = Date.now();
        for (let i = 0; i < rate.limit; i++) await limiter.acquire(key, rate);
        const denied = await limiter.acquire(key, rate);
        if (denied.allowed && Date.now() - started >= intervalMs / rate.limit - CLOCK_SLACK_MS && !lastTry) return STALLED;
        t.equal(denied.allowed, false);
        await sleep(denied.retryAfterMs + 50);
        t.equal((await limiter.acquire(key, rate)).allowed, true);
      });
    },
  ],
  [
    'taking several tokens at once counts them all',
    async (t, limiter) => {
      const key = uniqueName('rate');
      const taken = await limiter.acquire(key, RATE, 2);
      t.equal(taken.allowed, true);
      t.equal(taken.remaining, 1);
      const tooMany = await limiter.acquire(key, RATE, 2);
      t.equal(tooMany.allowed, false, 'one token left is not two');
      t.ok(tooMany.retryAfterMs > 0);
      t.equal((await limiter.acquire(key, RATE, 1)).allowed, true, 'the one left can still be taken');
    },
  ],
];

/** The RateLimiter contract: a token bucket per key. */
export async function rateLimiterContract(t: Test, factory: ContractFactory<RateLimiter>): Promise<void> {
  await runContract(t, 'RateLimiter contract', factory, cases);
}
