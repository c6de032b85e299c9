import type { Test } from 'tap';
import type { RevokeEntry, RevokeStore } from '../../sdk/contracts/revoke-store.js';
import { uuidv7 } from '../../sdk/id.js';
import { type CaseBody, type ContractFactory, runContract, uniqueName } from './support.js';

function makeRevoke(namespace: string, version: number, overrides: Partial<RevokeEntry> = {}): RevokeEntry {
  return { namespace, taskId: uuidv7(), version, terminate: false, revokedAt: Date.now(), ...overrides };
}

const cases: ReadonlyArray<readonly [string, CaseBody<RevokeStore>]> = [
  [
    'upsert applies newer versions only and returns what it applied',
    async (t, store) => {
      const namespace = uniqueName('ns');
      const first = makeRevoke(namespace, 1, { reason: 'duplicate' });
      const second = makeRevoke(namespace, 2, { terminate: true, expiresAt: Date.now() + 60_000 });
      t.same(await store.upsert([first, second]), [first, second], 'new entries are applied');
      const equal = { ...first, reason: 'equal version' };
      const stale = { ...second, version: 1, reason: 'stale version' };
      const newer = { ...second, version: 3, reason: 'newer version' };
      t.same(await store.upsert([equal, stale, newer]), [newer], 'equal and older versions are ignored');
      t.same(await store.get(namespace, first.taskId), first, 'the equal version did not overwrite');
      t.same(await store.get(namespace, second.taskId), newer);
      t.equal(await store.get(namespace, uuidv7()), null, 'an unknown task id is null');
      t.equal(await store.get(uniqueName('ns'), first.taskId), null, 'another namespace does not see it');
    },
  ],
  [
    'list orders a namespace by version and can start after a version',
    async (t, store) => {
      const namespace = uniqueName('ns');
      const v3 = makeRevoke(namespace, 3);
      const v1 = makeRevoke(namespace, 1);
      const v2 = makeRevoke(namespace, 2);
      await store.upsert([v3, v1]);
      await store.upsert([v2]);
      t.same(await store.list(namespace), [v1, v2, v3]);
      t.same(await store.list(namespace, { sinceVersion: 1 }), [v2, v3], 'only versions above sinceVersion');
      t.same(await store.list(namespace, { sinceVersion: 3 }), []);
      t.same(await store.list(uniqueName('ns')), [], 'an unknown namespace is empty');
    },
  ],
  [
    'prune deletes expired entries of one namespace only',
    async (t, store) => {
      const namespace = uniqueName('ns');
      const other = uniqueName('ns');
      const now = Date.now();
      const expired = makeRevoke(namespace, 1, { expiresAt: now - 1_000 });
      const expiringNow = makeRevoke(namespace, 2, { expiresAt: now });
      const later = makeRevoke(namespace, 3, { expiresAt: now + 60_000 });
      const forever = makeRevoke(namespace, 4);
      const otherExpired = makeRevoke(other, 1, { expiresAt: now - 1_000 });
      await store.upsert([expired, expiringNow, later, forever, otherExpired]);
      t.equal(await store.prune(namespace, now), 2, 'expired at or before now');
      t.same(await store.list(namespace), [later, forever]);
      t.same(await store.list(other), [otherExpired], 'another namespace is untouched');
      t.equal(await store.prune(namespace, now), 0, 'nothing left to prune');
    },
  ],
];

/** The RevokeStore contract: versioned upserts, reads in version order, and pruning. */
export async function revokeStoreContract(t: Test, factory: ContractFactory<RevokeStore>): Promise<void> {
  await runContract(t, 'RevokeStore contract', factory, cases);
}
