import type { Test } from 'tap';
import type { Rate, RateLimiter } from '../../sdk/contracts/rate-limiter.js';
import { type CaseBody, type ContractFactory, runContract, sleep, uniqueName } from './support.js';

/**
 * Three per 1.5 s: a token refills every 500 ms, slow enough that the calls of a case never see a
 * refill they did not wait for, on any store.
 */
const RATE: Rate = { limit: 3, intervalMs: 1_500 };

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
      const key = uniqueName('rate');
      for (let i = 0; i < RATE.limit; i++) await limiter.acquire(key, RATE);
      const denied = await limiter.acquire(key, RATE);
      t.equal(denied.allowed, false);
      await sleep(denied.retryAfterMs + 50);
      t.equal((await limiter.acquire(key, RATE)).allowed, true);
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
