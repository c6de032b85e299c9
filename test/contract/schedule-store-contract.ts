import type { Test } from 'tap';
import type { ScheduleEntry, ScheduleStore } from '../../sdk/contracts/schedule-store.js';
import { StaleVersionError } from '../../sdk/errors.js';
import { type CaseBody, type ContractFactory, runContract, uniqueName } from './support.js';

function makeEntry(id: string, overrides: Partial<ScheduleEntry> = {}): ScheduleEntry {
  return { id, task: 'reports.build', schedule: { every: 60_000 }, enabled: true, version: 0, ...overrides };
}

/** The entries whose id starts with `prefix`: other runs may share the store. */
function ours(entries: readonly ScheduleEntry[], prefix: string): ScheduleEntry[] {
  return entries.filter((entry) => entry.id.startsWith(prefix));
}

const cases: ReadonlyArray<readonly [string, CaseBody<ScheduleStore>]> = [
  [
    'a new entry written with version 0 is stored with version 1, every field kept',
    async (t, store) => {
      const entry = makeEntry(uniqueName('schedule'), {
        schedule: '*/5 * * * *',
        args: { report: 'daily', recipients: ['ops'] },
        headers: { tenant: 'acme' },
        queue: 'reports',
        priority: 7,
        jitterMs: 1_000,
        timezone: 'Europe/Paris',
        startAt: 1_700_000_000_000,
        endAt: 1_900_000_000_000,
        nextRunAt: 1_800_000_000_000,
        lastRunAt: 1_799_999_700_000,
        totalRuns: 12,
      });
      const stored = await store.upsert(entry);
      t.same(stored, { ...entry, version: 1 }, 'upsert returns the stored entry');
      t.same(await store.get(entry.id), { ...entry, version: 1 });
      const updated = await store.upsert({ ...stored, enabled: false, totalRuns: 13 });
      t.equal(updated.version, 2, 'each write adds one');
      t.same(await store.get(entry.id), { ...entry, enabled: false, totalRuns: 13, version: 2 });
    },
  ],
  [
    'a write with a stale version is rejected with StaleVersionError and changes nothing',
    async (t, store) => {
      const id = uniqueName('schedule');
      const stored = await store.upsert(makeEntry(id));
      await store.upsert({ ...stored, totalRuns: 1 });
      await t.rejects(store.upsert({ ...stored, totalRuns: 99 }), StaleVersionError, 'an older version');
      await t.rejects(store.upsert({ ...stored, version: 5 }), StaleVersionError, 'a version from the future');
      await t.rejects(
        store.upsert(makeEntry(uniqueName('schedule'), { version: 3 })),
        StaleVersionError,
        'a new id with a version above 0',
      );
      const current = await store.get(id);
      t.equal(current?.version, 2);
      t.equal(current?.totalRuns, 1, 'the rejected writes left no trace');
    },
  ],
  [
    'entries are listed by id, read one by one, and removed',
    async (t, store) => {
      const prefix = uniqueName('schedule');
      for (const suffix of ['c', 'a', 'b']) await store.upsert(makeEntry(`${prefix}-${suffix}`));
      t.same(
        ours(await store.list(), prefix).map((entry) => entry.id),
        [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`],
      );
      t.equal(await store.get(`${prefix}-zz`), null, 'an unknown id is null');
      t.equal(await store.remove(`${prefix}-b`), true);
      t.equal(await store.get(`${prefix}-b`), null);
      t.equal(await store.remove(`${prefix}-b`), false, 'removing it again reports nothing removed');
      t.same(
        ours(await store.list(), prefix).map((entry) => entry.id),
        [`${prefix}-a`, `${prefix}-c`],
      );
      const readded = await store.upsert(makeEntry(`${prefix}-b`));
      t.equal(readded.version, 1, 'a removed id starts again at version 1');
    },
  ],
  [
    'due returns enabled entries at or before now, soonest first, up to the limit',
    async (t, store) => {
      const prefix = uniqueName('schedule');
      // A random instant long past: no other run's entries are due by it, so `limit` sees only ours.
      const now = 1_000_000 + Math.floor(Math.random() * 1_000_000_000_000);
      const write = (suffix: string, overrides: Partial<ScheduleEntry>) => store.upsert(makeEntry(`${prefix}-${suffix}`, overrides));
      await write('late', { nextRunAt: now });
      await write('early', { nextRunAt: now - 500 });
      await write('middle', { nextRunAt: now - 100 });
      await write('disabled', { nextRunAt: now - 1_000, enabled: false });
      await write('future', { nextRunAt: now + 1 });
      await write('never', {});
      const due = await store.due(now);
      t.same(
        ours(due, prefix).map((entry) => entry.id),
        [`${prefix}-early`, `${prefix}-middle`, `${prefix}-late`],
      );
      const limited = await store.due(now, 2);
      t.same(
        limited.map((entry) => entry.id),
        [`${prefix}-early`, `${prefix}-middle`],
        'the soonest within the limit',
      );
    },
  ],
];

/** The ScheduleStore contract: optimistic versions, listing, removal and due entries. */
export async function scheduleStoreContract(t: Test, factory: ContractFactory<ScheduleStore>): Promise<void> {
  await runContract(t, 'ScheduleStore contract', factory, cases);
}
