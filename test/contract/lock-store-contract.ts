import type { Test } from 'tap';
import type { LockStore } from '../../sdk/contracts/lock-store.js';
import { CLOCK_SLACK_MS, type CaseBody, type ContractFactory, retryOnStall, runContract, STALLED, sleep, uniqueName } from './support.js';

/** A ttl that no stall of the machine reaches, for a lock that must stay held through a case. */
const HELD_MS = 60_000;

const cases: ReadonlyArray<readonly [string, CaseBody<LockStore>]> = [
  [
    'a free lock is taken, its owner is known, and nobody else takes it',
    async (t, locks) => {
      const key = uniqueName('lock');
      t.equal(await locks.owner(key), null, 'a free lock has no owner');
      t.equal(await locks.acquire(key, 'beat-a', HELD_MS), true);
      t.equal(await locks.owner(key), 'beat-a');
      t.equal(await locks.acquire(key, 'beat-b', HELD_MS), false, 'a held lock is refused');
      t.equal(await locks.owner(key), 'beat-a', 'the refused acquire changes nothing');
    },
  ],
  [
    'only the owner releases a lock, and then another may take it',
    async (t, locks) => {
      const key = uniqueName('lock');
      await locks.acquire(key, 'beat-a', HELD_MS);
      t.equal(await locks.release(key, 'beat-b'), false, 'the wrong owner is refused');
      t.equal(await locks.owner(key), 'beat-a');
      t.equal(await locks.release(key, 'beat-a'), true);
      t.equal(await locks.owner(key), null);
      t.equal(await locks.release(key, 'beat-a'), false, 'releasing a free lock is refused');
      t.equal(await locks.acquire(key, 'beat-b', HELD_MS), true);
    },
  ],
  [
    'an expired lock can be taken by another owner',
    async (t, locks) => {
      const key = uniqueName('lock');
      await locks.acquire(key, 'beat-a', 200);
      await sleep(500);
      t.equal(await locks.owner(key), null, 'nobody holds it after its ttl');
      t.equal(await locks.acquire(key, 'beat-b', HELD_MS), true);
      t.equal(await locks.owner(key), 'beat-b');
    },
  ],
  [
    'renew keeps the lock past its original ttl, and only the owner may renew',
    async (t, locks) => {
      // The renew must come before the original ttl ends. A stall of the machine between acquire and renew can let the lock
      // expire first; that is seen from the clock (the renew started after the ttl could have ended), and the case runs again
      // with a longer ttl. A refused renew that started while the lock was surely held is a failure.
      await retryOnStall(t, 400, async (ttl, lastTry) => {
        const key = uniqueName('lock');
        const beforeAcquire = Date.now();
        t.equal(await locks.acquire(key, 'beat-a', ttl), true, `a free lock is taken (ttl ${ttl} ms)`);
        const acquired = Date.now();
        await sleep(ttl / 4);
        const renewStarted = Date.now();
        const renewed = await locks.renew(key, 'beat-a', HELD_MS);
        if (!renewed && renewStarted >= beforeAcquire + ttl - CLOCK_SLACK_MS && !lastTry) return STALLED;
        t.equal(renewed, true, 'the owner renews a held lock');
        t.equal(await locks.renew(key, 'beat-b', HELD_MS), false, 'the wrong owner is refused');
        // Past the original ttl: without the renew the lock would be free by now.
        await sleep(Math.max(0, acquired + ttl + 2 * CLOCK_SLACK_MS - Date.now()));
        t.equal(await locks.owner(key), 'beat-a', 'still held after the original ttl');
        t.equal(await locks.acquire(key, 'beat-b', HELD_MS), false);
        t.equal(await locks.renew(uniqueName('lock'), 'beat-a', HELD_MS), false, 'a lock nobody holds is not renewed');
      });
    },
  ],
];

/** The LockStore contract: acquire, owner, renew and release with expiry. */
export async function lockStoreContract(t: Test, factory: ContractFactory<LockStore>): Promise<void> {
  await runContract(t, 'LockStore contract', factory, cases);
}
