import t, { type Test } from 'tap';
import { beat, Beat, firingLockKey, type FiringReport } from '../../plugins/beat/index.js';
import { SCHEDULE_ID_HEADER, SCHEDULED_FOR_HEADER, scheduleEntryFor } from '../../plugins/beat/schedule-rules.js';
import type { ScheduleStore } from '../../sdk/contracts/schedule-store.js';
import type { Envelope } from '../../sdk/envelope.js';
import { ConfigError } from '../../sdk/errors.js';
import {
  defineTask,
  MemoryBroker,
  MemoryLockStore,
  MemoryResultBackend,
  MemoryScheduleStore,
  Stem,
  type StemPlugin,
} from '../../sdk/index.js';
import { sleep, waitFor } from '../helpers/wait.js';

const at = (iso: string): number => Date.parse(iso);

/** Provides the same store instances to several Stems, as processes sharing a server would see them. */
function shared(services: {
  scheduleStore: ScheduleStore;
  lockStore: MemoryLockStore;
  broker?: MemoryBroker;
  backend?: MemoryResultBackend;
}): StemPlugin {
  return {
    name: 'shared',
    apply(stem) {
      stem.provide('scheduleStore', services.scheduleStore);
      stem.provide('lockStore', services.lockStore);
      if (services.broker) stem.provide('broker', services.broker);
      if (services.backend) stem.provide('backend', services.backend);
    },
  };
}

/** Records every envelope a Stem publishes. */
function recordPublished(stem: Stem, into: Envelope[]): void {
  stem.hooks.published.tapPromise('test', async (envelopes) => void into.push(...envelopes));
}

/** A Stem on a fresh memory schedule store and lock store, recording what it publishes. */
async function harness(
  t: Test,
  broker?: MemoryBroker,
): Promise<{ stem: Stem; store: MemoryScheduleStore; locks: MemoryLockStore; published: Envelope[] }> {
  const store = new MemoryScheduleStore();
  const locks = new MemoryLockStore();
  const published: Envelope[] = [];
  const stem = await Stem.create({
    plugins: [
      shared(broker === undefined ? { scheduleStore: store, lockStore: locks } : { scheduleStore: store, lockStore: locks, broker }),
    ],
  });
  t.teardown(() => stem.close());
  recordPublished(stem, published);
  return { stem, store, locks, published };
}

t.test('an every:1s entry is enqueued with the schedule headers and a worker runs it', async (t) => {
  const seen: Array<Record<string, string>> = [];
  const ping = defineTask({ name: 'beat.ping', handler: async (_args: object, ctx) => void seen.push({ ...ctx.headers }) });
  const plugin = beat({
    tick: '100ms',
    schedules: [{ id: 'ping-every-second', task: 'beat.ping', schedule: 'every:1s', headers: { tenant: 'acme' } }],
  });
  const stem = await Stem.create({ tasks: [ping], plugins: [plugin] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  await waitFor(() => seen.length >= 2, 'two scheduled runs of beat.ping');

  const [first, second] = seen;
  t.equal(first!['stem-schedule-id'], 'ping-every-second');
  t.equal(first!.tenant, 'acme', 'the entry headers are kept');
  const slots = [first!['stem-scheduled-for']!, second!['stem-scheduled-for']!].map(Date.parse);
  t.equal(slots[0]! % 1_000, 0, 'every:1s slots fall on whole seconds');
  t.equal(slots[1]! - slots[0]!, 1_000, 'consecutive slots, one second apart');

  const entry = await stem.service('scheduleStore').get('ping-every-second');
  t.ok(entry!.totalRuns! >= 2, 'the runs are recorded');
  t.ok(entry!.lastRunAt! >= slots[1]!, 'lastRunAt is recorded');
  t.ok(entry!.nextRunAt! > slots[1]!, 'nextRunAt moved on');
  t.ok(entry!.version > 2, 'each run is a versioned write');
  t.equal(plugin.beat?.isRunning, true);
  await stem.close();
  t.equal(plugin.beat?.isRunning, false, 'stem.close() stops the Beat');
});

t.test('two Beats on one store enqueue each firing exactly once', async (t) => {
  const services = { scheduleStore: new MemoryScheduleStore(), lockStore: new MemoryLockStore(), broker: new MemoryBroker() };
  const published: Envelope[] = [];
  const stems = await Promise.all([0, 1].map(() => Stem.create({ plugins: [shared(services), beat({ tick: '50ms' })] })));
  for (const stem of stems) recordPublished(stem, published);
  t.teardown(async () => {
    for (const stem of stems) await stem.close();
  });
  await services.scheduleStore.upsert(scheduleEntryFor({ id: 'contended', task: 'beat.count', schedule: 'every:1s' }, Date.now()));
  await waitFor(() => published.length >= 4, 'four firings', 60_000);
  for (const stem of stems) await stem.close();

  const bySlot = new Map<string, number>();
  for (const envelope of published) {
    t.equal(envelope.headers[SCHEDULE_ID_HEADER], 'contended');
    const slot = envelope.headers[SCHEDULED_FOR_HEADER]!;
    bySlot.set(slot, (bySlot.get(slot) ?? 0) + 1);
  }
  t.ok(bySlot.size >= 4, `${bySlot.size} distinct slots fired`);
  t.same(
    [...bySlot.entries()].filter(([, count]) => count > 1),
    [],
    'no slot was enqueued twice',
  );
  t.equal((await services.scheduleStore.get('contended'))!.totalRuns, published.length, 'every enqueue was recorded once');
});

t.test('after downtime, an entry that missed five slots fires once, then on its next slot', async (t) => {
  let now = at('2030-01-01T00:00:00.100Z');
  const { stem, store, published } = await harness(t);
  const beatOf = (): Beat => new Beat(stem, { now: () => now });
  await store.upsert(scheduleEntryFor({ id: 'every-second', task: 'beat.count', schedule: 'every:1s' }, now));

  now = at('2030-01-01T00:00:01.050Z');
  t.match(await beatOf().tick(), [{ outcome: 'enqueued', scheduledFor: at('2030-01-01T00:00:01Z') }], 'fires on its slot');
  // Beat is down from 00:01 to 00:06.5: slots 00:02 … 00:06 pass unseen.
  now = at('2030-01-01T00:00:06.500Z');
  const reports = await beatOf().tick();
  t.equal(reports.length, 1, 'one catch-up firing, not five');
  t.match(
    reports[0],
    { outcome: 'enqueued', scheduledFor: at('2030-01-01T00:00:02Z'), nextRunAt: at('2030-01-01T00:00:07Z') },
    'it carries the first missed slot; the next run is the next future slot',
  );
  t.same(await beatOf().tick(), [], 'nothing else is due until 00:07');
  t.equal(published.length, 2);
  t.equal(published[1]!.headers[SCHEDULED_FOR_HEADER], '2030-01-01T00:00:02.000Z');
});

t.test('a Beat stopped for three seconds fires once when it starts again', async (t) => {
  const { stem, store, published } = await harness(t);
  await store.upsert(scheduleEntryFor({ id: 'restart', task: 'beat.count', schedule: 'every:1s' }, Date.now()));
  const scheduler = new Beat(stem, { tick: '50ms' });
  scheduler.start();
  await waitFor(() => published.length >= 1, 'a first firing');
  await scheduler.stop();
  const stoppedAt = Date.now();
  const before = published.length;
  await sleep(3_200);
  const restartedAt = Date.now();
  scheduler.start();
  await waitFor(() => published.length > before, 'the catch-up firing');
  await sleep(300);
  await scheduler.stop();
  const inGap = published.slice(before).filter((envelope) => {
    const slot = Date.parse(envelope.headers[SCHEDULED_FOR_HEADER]!);
    return slot > stoppedAt && slot <= restartedAt;
  });
  t.equal(inGap.length, 1, 'the three missed slots gave one firing');
});

t.test('a schedule hook can skip a firing; the slot is consumed but not counted as a run', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const { stem, store, published } = await harness(t);
  stem.hooks.schedule.tapPromise('test', async (firing) => ({ ...firing, skip: firing.scheduleId === 'skipped', args: { changed: true } }));
  await store.upsert(scheduleEntryFor({ id: 'skipped', task: 'beat.count', schedule: 'every:1m' }, now));
  await store.upsert(scheduleEntryFor({ id: 'changed', task: 'beat.count', schedule: 'every:1m' }, now));
  now = at('2030-01-01T00:01:00Z');
  const reports = await new Beat(stem, { now: () => now }).tick();
  t.same(
    reports.map((report) => [report.scheduleId, report.outcome]),
    [
      ['changed', 'enqueued'],
      ['skipped', 'skipped'],
    ],
  );
  t.same(
    published.map((envelope) => envelope.args),
    [{ changed: true }],
    'a tap may change the firing',
  );
  const skipped = await store.get('skipped');
  t.equal(skipped!.nextRunAt, at('2030-01-01T00:02:00Z'), 'the skipped slot is consumed');
  t.equal(skipped!.totalRuns, 0, 'a skipped firing is not a run');
});

t.test('jitter delays the enqueue by a random amount up to jitterMs', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const { stem, store, published } = await harness(t);
  await store.upsert(scheduleEntryFor({ id: 'jittered', task: 'beat.count', schedule: 'every:1m', jitterMs: 10_000 }, now));
  now = at('2030-01-01T00:01:00Z');
  const [report] = await new Beat(stem, { now: () => now, random: () => 0.25 }).tick();
  t.equal(report!.delayMs, 2_500);
  const envelope = published[0]!;
  t.ok(
    envelope.notBefore !== undefined && envelope.notBefore - envelope.createdAt === 2_500,
    'notBefore is the enqueue time plus the drawn delay',
  );
});

t.test('a firing whose lock another Beat holds is not enqueued', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const { stem, locks, store, published } = await harness(t);
  const entry = await store.upsert(scheduleEntryFor({ id: 'guarded', task: 'beat.count', schedule: 'every:1m' }, now));
  now = at('2030-01-01T00:01:00Z');

  await locks.acquire(firingLockKey('guarded', entry.nextRunAt!), 'another-beat', 60_000);
  t.match(await new Beat(stem, { now: () => now }).tick(), [{ outcome: 'taken' }], 'the lock is held elsewhere');
  t.equal(published.length, 0, 'nothing was enqueued');
  await locks.release(firingLockKey('guarded', entry.nextRunAt!), 'another-beat');
  t.match(await new Beat(stem, { now: () => now }).tick(), [{ outcome: 'enqueued' }], 'the next tick fires the slot');
  t.equal(published.length, 1);
});

t.test('an edit written between the enqueue and the record is kept, and the slot is recorded once', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const { store, locks, published } = await harness(t);
  await store.upsert(scheduleEntryFor({ id: 'edited', task: 'beat.count', schedule: 'every:1m' }, now));
  now = at('2030-01-01T00:01:00Z');

  // Someone edits the entry after the Beat read it, just before its record: the versioned upsert
  // refuses the record once, and the Beat records again on top of the edit.
  const racing: ScheduleStore = Object.create(store) as ScheduleStore;
  let edits = 0;
  racing.upsert = async (written) => {
    if (edits++ === 0) {
      const current = await store.get(written.id);
      await store.upsert({ ...current!, headers: { edited: 'yes' } });
    }
    return store.upsert(written);
  };
  const racingStem = await Stem.create({ plugins: [shared({ scheduleStore: racing, lockStore: locks })] });
  t.teardown(() => racingStem.close());
  recordPublished(racingStem, published);
  t.match(await new Beat(racingStem, { now: () => now }).tick(), [{ outcome: 'enqueued', nextRunAt: at('2030-01-01T00:02:00Z') }]);
  t.equal(published.length, 1, 'enqueued once');
  t.match(
    await store.get('edited'),
    { headers: { edited: 'yes' }, nextRunAt: at('2030-01-01T00:02:00Z'), totalRuns: 1 },
    'the edit is kept and the run recorded',
  );
  t.same(await new Beat(racingStem, { now: () => now }).tick(), [], 'nothing is due any more');
  t.equal(published.length, 1);
});

t.test('an entry disabled while its firing was being enqueued keeps its state; the task stays enqueued', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const { stem, store, published } = await harness(t);
  await store.upsert(scheduleEntryFor({ id: 'disabled', task: 'beat.count', schedule: 'every:1m' }, now));
  now = at('2030-01-01T00:01:00Z');
  stem.hooks.enqueue.tapPromise('disable', async (envelope) => {
    const current = await store.get('disabled');
    await store.upsert({ ...current!, enabled: false });
    return envelope;
  });
  t.match(await new Beat(stem, { now: () => now }).tick(), [{ outcome: 'enqueued' }]);
  t.equal(published.length, 1);
  t.match(await store.get('disabled'), { enabled: false, totalRuns: 0 }, 'the disabling edit is not overwritten');
});

t.test('an enqueue that fails on a passing error gives the slot back for the next tick', async (t) => {
  let now = at('2030-01-01T00:00:00Z');
  const broker = new MemoryBroker();
  const publish = broker.publish.bind(broker);
  let failures = 1;
  broker.publish = async (envelopes) => {
    if (failures-- > 0) throw new Error('connection reset');
    return publish(envelopes);
  };
  const errors: unknown[] = [];
  const { stem, store } = await harness(t, broker);
  await store.upsert(scheduleEntryFor({ id: 'flaky', task: 'beat.count', schedule: 'every:1m' }, now));
  now = at('2030-01-01T00:01:00Z');
  const scheduler = new Beat(stem, { now: () => now, onError: (error) => errors.push(error) });
  t.match(await scheduler.tick(), [{ outcome: 'failed' }]);
  t.match(errors, [/connection reset/], 'the error is reported');
  t.match(await store.get('flaky'), { nextRunAt: at('2030-01-01T00:01:00Z'), totalRuns: 0 }, 'the slot is due again');
  t.match(await scheduler.tick(), [{ outcome: 'enqueued', scheduledFor: at('2030-01-01T00:01:00Z') }]);
});

t.test('beat() validates its options when created', async (t) => {
  t.throws(() => beat({ tick: 'soon' }), ConfigError);
  t.throws(() => beat({ tick: 'soon' }), /beat\(\): option "tick"/);
  t.throws(() => beat({ batchSize: 0 }), /option "batchSize" must be a positive integer/);
  t.throws(() => beat({ schedules: [{ id: 'x', task: 'y', schedule: 'every:1ms' }] }), /entry "x": schedule: .*1s minimum/);
  const reports: FiringReport[] = [];
  t.doesNotThrow(() => beat({ tick: '250ms', lockTtl: '1m', onFiring: (report) => reports.push(report) }));
});
