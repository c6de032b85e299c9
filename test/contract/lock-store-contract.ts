import type { Test } from 'tap';
import type { LockStore } from '../../sdk/contracts/lock-store.js';
import { type CaseBody, type ContractFactory, runContract, sleep, uniqueName } from './support.js';

const cases: ReadonlyArray<readonly [string, CaseBody<LockStore>]> = [
  [
    'a free lock is taken, its owner is known, and nobody else takes it',
    async (t, locks) => {
      const key = uniqueName('lock');
      t.equal(await locks.owner(key), null, 'a free lock has no owner');
      t.equal(await locks.acquire(key, 'beat-a', 5_000), true);
      t.equal(await locks.owner(key), 'beat-a');
      t.equal(await locks.acquire(key, 'beat-b', 5_000), false, 'a held lock is refused');
      t.equal(await locks.owner(key), 'beat-a', 'the refused acquire changes nothing');
    },
  ],
  [
    'only the owner releases a lock, and then another may take it',
    async (t, locks) => {
      const key = uniqueName('lock');
      await locks.acquire(key, 'beat-a', 5_000);
      t.equal(await locks.release(key, 'beat-b'), false, 'the wrong owner is refused');
      t.equal(await locks.owner(key), 'beat-a');
      t.equal(await locks.release(key, 'beat-a'), true);
      t.equal(await locks.owner(key), null);
      t.equal(await locks.release(key, 'beat-a'), false, 'releasing a free lock is refused');
      t.equal(await locks.acquire(key, 'beat-b', 5_000), true);
    },
  ],
  [
    'an expired lock can be taken by another owner',
    async (t, locks) => {
      const key = uniqueName('lock');
      await locks.acquire(key, 'beat-a', 200);
      await sleep(500);
      t.equal(await locks.owner(key), null, 'nobody holds it after its ttl');
      t.equal(await locks.acquire(key, 'beat-b', 5_000), true);
      t.equal(await locks.owner(key), 'beat-b');
    },
  ],
  [
    'renew keeps the lock past its original ttl, and only the owner may renew',
    async (t, locks) => {
      const key = uniqueName('lock');
      await locks.acquire(key, 'beat-a', 400);
      await sleep(150);
      t.equal(await locks.renew(key, 'beat-a', 2_000), true);
      t.equal(await locks.renew(key, 'beat-b', 2_000), false, 'the wrong owner is refused');
      await sleep(500);
      t.equal(await locks.owner(key), 'beat-a', 'still held after the original ttl');
      t.equal(await locks.acquire(key, 'beat-b', 2_000), false);
      t.equal(await locks.renew(uniqueName('lock'), 'beat-a', 2_000), false, 'a lock nobody holds is not renewed');
    },
  ],
];

/** The LockStore contract: acquire, owner, renew and release with expiry. */
export async function lockStoreContract(t: Test, factory: ContractFactory<LockStore>): Promise<void> {
  await runContract(t, 'LockStore contract', factory, cases);
}
