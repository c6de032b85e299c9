import t from 'tap';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { debounce, debounced, SUPERSEDED } from '../../plugins/unique/index.js';
import { defineTask, Stem, type StemPlugin, TaskCancelledError, type TaskDefinition } from '../../sdk/index.js';
import { CLOCK_SLACK_MS, retryOnStall, STALLED, uniqueName } from '../contract/support.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';

/** How long a result is waited for: a ceiling, not an expectation. */
const CEILING_MS = 60_000;

/** One store setup: the plugins each Stem instance of a case gets (all sharing the same stores). */
interface Setup {
  name: string;
  plugins: () => StemPlugin[];
  /** True when several Stem instances share its stores (memory: each has its own). */
  shared: boolean;
}

const setups: Setup[] = [{ name: 'memory', plugins: () => [], shared: false }];
if (await requireRedis(t)) {
  const namespace = testNamespace('debounce');
  t.teardown(() => deleteNamespace(namespace));
  setups.push({ name: 'redis', plugins: () => [redis({ url: REDIS_URL, namespace })], shared: true });
}
if (await requirePostgres(t)) {
  const schema = uniqueSchema('debounce');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  setups.push({ name: 'postgres', plugins: () => [postgres({ url: testUrl, schema, migrate: false, poolSize: 4 })], shared: true });
}

/**
 * The debounce window a case starts with. Its enqueues must all come within it: when a stall of the machine spread them
 * wider (seen from the clock), an earlier one may rightly run, and the case is run again with a 4x window (retryOnStall).
 */
const WINDOW_MS = 300;

/** A debounced task that records each run's arguments. */
function reindexTask(
  queue: string,
  runs: Array<{ user: string; n: number }>,
  windowMs = WINDOW_MS,
): TaskDefinition<{ user: string; n: number }, number> {
  return defineTask({
    name: 'debounce.reindex',
    options: { queue, debounce: `${windowMs}ms`, debounceKey: (args: { user: string }) => args.user },
    handler: async (args: { user: string; n: number }) => {
      runs.push(args);
      return args.n;
    },
  });
}

for (const setup of setups) {
  t.test(
    `${setup.name}: the last enqueue of a key within the window runs once; the earlier ones end cancelled as superseded`,
    async (t) => {
      await retryOnStall(t, WINDOW_MS, async (windowMs, lastTry) => {
        const queue = uniqueName('debounce');
        const runs: Array<{ user: string; n: number }> = [];
        const reindex = reindexTask(queue, runs, windowMs);
        const stem = await Stem.create({ plugins: [...setup.plugins(), debounce()], tasks: [reindex] });
        t.teardown(() => stem.close());
        const worker = stem.worker({ queues: [queue] });
        await worker.start();
        t.teardown(() => worker.stop());
        const started = Date.now();
        const first = await stem.enqueue(reindex, { user: 'a', n: 1 });
        const second = await stem.enqueue(reindex, { user: 'a', n: 2 });
        const other = await stem.enqueue(reindex, { user: 'b', n: 1 });
        const last = await stem.enqueue(reindex, { user: 'a', n: 3 });
        if (Date.now() - started >= windowMs - CLOCK_SLACK_MS && !lastTry) return STALLED;
        t.equal(await last.result({ timeoutMs: CEILING_MS }), 3, 'the last one runs');
        t.equal(await other.result({ timeoutMs: CEILING_MS }), 1, 'another key is debounced on its own');
        for (const [name, handle] of [
          ['first', first],
          ['second', second],
        ] as const) {
          const error = await handle.result({ timeoutMs: CEILING_MS }).catch((caught: unknown) => caught);
          t.ok(error instanceof TaskCancelledError, `a wait on the ${name} one ends: cancelled`);
          t.match((error as Error).message, /superseded: a newer enqueue with debounce key "debounce\.reindex:a"/);
          t.equal((await stem.backend.get(handle.id))?.error?.code, SUPERSEDED);
        }
        t.same(
          runs.filter((run) => run.user === 'a'),
          [{ user: 'a', n: 3 }],
          'user a ran once, with the last arguments',
        );

        const again = await stem.enqueue(reindex, { user: 'a', n: 4 });
        t.equal(await again.result({ timeoutMs: CEILING_MS }), 4, 'after the task ran, a new enqueue starts a new window and runs');
      });
    },
  );

  t.test(`${setup.name}: a per-enqueue debounce (headers) supersedes the same way`, async (t) => {
    const queue = uniqueName('debounce');
    const runs: number[] = [];
    const ping = defineTask({
      name: 'debounce.ping',
      options: { queue },
      handler: async (args: { n: number }) => {
        runs.push(args.n);
        return args.n;
      },
    });
    const stem = await Stem.create({ plugins: [...setup.plugins(), debounce()], tasks: [ping] });
    t.teardown(() => stem.close());
    const worker = stem.worker({ queues: [queue] });
    await worker.start();
    t.teardown(() => worker.stop());
    await retryOnStall(t, WINDOW_MS, async (windowMs, lastTry) => {
      runs.length = 0;
      const key = uniqueName('key');
      const started = Date.now();
      const early = await stem.enqueue(ping, { n: 1 }, debounced(`${windowMs}ms`, key));
      const late = await stem.enqueue(ping, { n: 2 }, debounced(`${windowMs}ms`, key));
      if (Date.now() - started >= windowMs - CLOCK_SLACK_MS && !lastTry) {
        await Promise.allSettled([early.result({ timeoutMs: CEILING_MS }), late.result({ timeoutMs: CEILING_MS })]);
        return STALLED;
      }
      t.equal(await late.result({ timeoutMs: CEILING_MS }), 2);
      await t.rejects(early.result({ timeoutMs: CEILING_MS }), /superseded/);
      t.same(runs, [2]);
    });
  });

  if (setup.shared) {
    t.test(`${setup.name}: producers enqueuing one key at once from separate instances run it exactly once`, async (t) => {
      const queue = uniqueName('debounce');
      const runs: Array<{ user: string; n: number }> = [];
      const reindex = reindexTask(queue, runs);
      const producers = await Promise.all(
        [0, 1, 2].map(() => Stem.create({ plugins: [...setup.plugins(), debounce()], tasks: [reindex] })),
      );
      t.teardown(() => Promise.all(producers.map((producer) => producer.close())));
      const handles = await Promise.all(
        Array.from({ length: 12 }, (_, n) => producers[n % producers.length]!.enqueue(reindex, { user: 'c', n })),
      );
      const worker = producers[0]!.worker({ queues: [queue] });
      await worker.start();
      t.teardown(() => worker.stop());
      const outcomes = await Promise.all(
        handles.map((handle) =>
          handle.result({ timeoutMs: CEILING_MS }).then(
            (value) => ({ ran: value }),
            (error: unknown) => ({ error }),
          ),
        ),
      );
      const ran = outcomes.filter((outcome) => 'ran' in outcome);
      t.equal(ran.length, 1, 'exactly one of twelve ran');
      t.ok(
        outcomes.every((outcome) => 'ran' in outcome || /superseded/.test(String((outcome as { error: unknown }).error))),
        'the others were superseded',
      );
      t.equal(runs.length, 1, 'the handler ran once');
    });
  }
}
