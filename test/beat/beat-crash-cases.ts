// The Beat crash cases: a Beat process killed with SIGKILL in the middle of a firing, then started
// again; the firing happens, under the same task id. Run on Redis and on Postgres by the two
// beat-crash-*.test.ts files (apart, so that tap runs them in parallel).
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { firingTaskId } from '../../plugins/beat/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { scheduleEntryFor } from '../../plugins/beat/schedule-rules.js';
import { defineTask, Stem, type StemPlugin } from '../../sdk/index.js';
import { dropSchema, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, testNamespace } from '../redis/redis-test-support.js';
import { startNode, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';

const CRASH_BEAT = fileURLToPath(new URL('./crash-beat.ts', import.meta.url));
const SCHEDULE_ID = 'crash-once';

/** One store a Beat process and a worker share, made fresh for one test. */
export interface Store {
  env: Record<string, string>;
  plugin(): StemPlugin;
  drop(): Promise<unknown>;
}

/** A namespace of its own on the test Redis. */
export async function redisStore(): Promise<Store> {
  const namespace = testNamespace('beat-crash');
  return {
    env: { BEAT_STORE: 'redis', BEAT_URL: REDIS_URL, BEAT_NAMESPACE: namespace },
    plugin: () => redis({ url: REDIS_URL, namespace, blockMs: 200 }),
    drop: () => deleteNamespace(namespace),
  };
}

/** A schema of its own on the test Postgres, migrated. */
export async function postgresStore(): Promise<Store> {
  const schema = uniqueSchema('beat_crash');
  await runMigrations(testUrl, schema);
  return {
    env: { BEAT_STORE: 'postgres', BEAT_URL: testUrl, BEAT_NAMESPACE: schema },
    plugin: () => postgres({ url: testUrl, schema, migrate: false, pollIntervalMs: 100 }),
    drop: () => dropSchema(schema),
  };
}

/** The store, a Stem on it with a worker for `beat.crash` that records the ids it runs, and a one-off entry due now. */
async function setUp(t: Test, open: () => Promise<Store>) {
  const store = await open();
  const ran: string[] = [];
  const task = defineTask({ name: 'beat.crash', handler: async (_args: unknown, ctx) => void ran.push(ctx.id) });
  const stem = await Stem.create({ plugins: [store.plugin()], tasks: [task] });
  const beats: RunningStem[] = [];
  t.teardown(async () => {
    await Promise.all(beats.map((beat) => beat.stop('SIGKILL')));
    await stem.close();
    await store.drop();
  });
  // A whole second in the past: a one-off `at` entry that never fired stays due.
  const slot = Math.floor(Date.now() / 1000) * 1000 - 1000;
  await stem
    .service('scheduleStore')
    .upsert(scheduleEntryFor({ id: SCHEDULE_ID, task: 'beat.crash', schedule: { at: new Date(slot).toISOString() } }, Date.now()));
  const startBeat = (crashAt?: 'enqueue' | 'published'): RunningStem => {
    const beat = startNode(['--import', 'tsx', CRASH_BEAT], {
      env: { ...store.env, ...(crashAt === undefined ? {} : { BEAT_CRASH_AT: crashAt }) },
    });
    beats.push(beat);
    return beat;
  };
  return { stem, ran, slot, startBeat, expectedId: firingTaskId(SCHEDULE_ID, slot) };
}

/** Waits until the Beat process is gone and says whether SIGKILL took it. */
async function killedBySigkill(beat: RunningStem): Promise<boolean> {
  await waitFor(() => beat.child.exitCode !== null || beat.child.signalCode !== null, 'the Beat process to die', 60_000);
  return beat.child.signalCode === 'SIGKILL';
}

/** The three crash points, each a tap test on a fresh store. */
export function crashTests(t: Test, open: () => Promise<Store>): void {
  t.test('a Beat killed before its enqueue recorded nothing: restarted, it fires the slot as the same task', async (t) => {
    const { stem, ran, slot, startBeat, expectedId } = await setUp(t, open);
    const first = startBeat('enqueue');
    t.ok(await killedBySigkill(first), 'the first Beat died by SIGKILL inside its enqueue');
    t.notMatch(first.output(), /published/, 'it published nothing');
    t.match(await stem.service('scheduleStore').get(SCHEDULE_ID), { nextRunAt: slot, totalRuns: 0 }, 'the slot is still due');

    const second = startBeat();
    await second.waitForOutput(new RegExp(`fired ${SCHEDULE_ID} enqueued ${expectedId}`));
    t.match(second.output(), new RegExp(`published ${expectedId}`), 'the restarted Beat published the slot under its deterministic id');
    await stem.worker({ queues: ['default'] }).start();
    await waitFor(() => ran.length > 0, 'the fired task to run', 60_000);
    t.same(ran, [expectedId], "the task ran under the slot's id");
    const entry = await stem.service('scheduleStore').get(SCHEDULE_ID);
    t.equal(entry?.totalRuns, 1, 'the run is recorded once');
    t.equal(entry?.nextRunAt, undefined, 'the one-off entry is not due any more');
  });

  t.test(
    'a Beat killed after its enqueue, before recording the run: restarted, it fires the same task, which a worker that ran it does not run again',
    async (t) => {
      const { stem, ran, slot, startBeat, expectedId } = await setUp(t, open);
      const first = startBeat('published');
      t.ok(await killedBySigkill(first), 'the first Beat died by SIGKILL after publishing');
      t.match(first.output(), new RegExp(`published ${expectedId}`), 'it published the slot under its deterministic id');
      t.match(
        await stem.service('scheduleStore').get(SCHEDULE_ID),
        { nextRunAt: slot, totalRuns: 0 },
        'the run was not recorded: the slot is still due',
      );

      await stem.worker({ queues: ['default'] }).start();
      t.match(await stem.handle(expectedId).result({ timeoutMs: 60_000 }), undefined, 'a worker ran the published task');
      const second = startBeat();
      await second.waitForOutput(new RegExp(`fired ${SCHEDULE_ID} enqueued ${expectedId}`));
      t.notMatch(second.output(), /published/, 'the restarted Beat saw the task past queued and did not publish it again');
      t.same(ran, [expectedId], "the task ran once, under the slot's id");
      const entry = await stem.service('scheduleStore').get(SCHEDULE_ID);
      t.equal(entry?.totalRuns, 1, 'the run is recorded once');
      t.equal(entry?.nextRunAt, undefined, 'the one-off entry is not due any more');
    },
  );

  t.test(
    'a Beat killed after its enqueue, restarted before any worker ran it: the slot is published again under the same id (at least once)',
    async (t) => {
      const { stem, ran, startBeat, expectedId } = await setUp(t, open);
      const first = startBeat('published');
      t.ok(await killedBySigkill(first), 'the first Beat died by SIGKILL after publishing');
      const second = startBeat();
      await second.waitForOutput(new RegExp(`fired ${SCHEDULE_ID} enqueued ${expectedId}`));
      t.match(second.output(), new RegExp(`published ${expectedId}`), 'still queued: the restarted Beat publishes the same id again');
      t.equal((await stem.service('scheduleStore').get(SCHEDULE_ID))?.totalRuns, 1, 'the run is recorded once');

      await stem.worker({ queues: ['default'] }).start();
      t.match(await stem.handle(expectedId).result({ timeoutMs: 60_000 }), undefined, 'the task succeeds');
      await waitFor(() => ran.length > 0, 'a run');
      t.ok(
        ran.every((id) => id === expectedId),
        `every run (${ran.length}) is the slot's task`,
      );
    },
  );
}
