import t from 'tap';
import pg from 'pg';
import { defineTask, Stem } from '../../sdk/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { sleep, uniqueName, waitFor } from '../helpers/wait.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/**
 * Terminates, over and over on one admin connection, every backend whose application_name
 * matches `pattern` (a LIKE pattern), pausing `pauseMs` between rounds, until stopped.
 * With no pause a new backend rarely lives long enough to finish its start-up.
 */
/**
 * Terminates the backends whose application_name matches `pattern`, then pauses `pauseMs`, until
 * stopped. With `progress` (a count that grows as tasks run), each round also waits for it to grow
 * before the next kill: however slow a loaded machine is, work gets done between kills.
 */
function startKiller(pattern: string, pauseMs: number, progress?: () => number): { stop(): Promise<number> } {
  let stopped = false;
  let killed = 0;
  const done = (async () => {
    const admin = new pg.Client({ connectionString: testUrl });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      while (!stopped) {
        const { rows } = await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where application_name like $1 and pid <> pg_backend_pid() and pg_terminate_backend(pid)`,
          [pattern],
        );
        killed += rows.length;
        await sleep(pauseMs);
        const mark = progress?.();
        while (mark !== undefined && !stopped && progress!() <= mark) await sleep(10);
      }
    } finally {
      await admin.end().catch(() => undefined);
    }
  })();
  return {
    async stop() {
      // Idempotent: the test stops it, and its teardown again when an assertion threw first.
      stopped = true;
      await done;
      return killed;
    },
  };
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('kill');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  // Any rejection that escapes would end the process; record it so the test names it instead.
  const escaped: unknown[] = [];
  const record = (reason: unknown): void => void escaped.push(reason);
  process.on('unhandledRejection', record);
  t.teardown(() => void process.off('unhandledRejection', record));

  t.test('the LISTEN connection killed during start-up and during the run: every task runs once, nothing escapes', async (t) => {
    const applicationName = uniqueName('stem-kill');
    const queue = uniqueName('queue');
    const runs = new Map<number, number>();
    const work = defineTask({
      name: 'kill.work',
      handler: async (args: { n: number }) => {
        runs.set(args.n, (runs.get(args.n) ?? 0) + 1);
        await sleep(5);
        return args.n * 2;
      },
    });
    // Killed from before the plugin opens its LISTEN connection until after the worker started,
    // results were watched and tasks were enqueued: every LISTEN attempt of start-up dies.
    const startUp = startKiller(`${applicationName}:listen%`, 0);
    t.teardown(() => startUp.stop());
    const stem = await Stem.create({
      plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), applicationName, pollIntervalMs: 100 })],
      tasks: [work],
    });
    t.teardown(() => stem.close());
    const worker = stem.worker({ queues: [queue], concurrency: 4 });
    await worker.start();
    const first = await stem.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ task: work.name, args: { n: i }, options: { queue } })));
    const firstResults = Promise.all(first.map((handle) => handle.result({ timeoutMs: 30_000 })));
    await sleep(300);
    const killedAtStart = await startUp.stop();
    t.ok(killedAtStart > 0, `killed the LISTEN connection ${killedAtStart} times during start-up`);
    t.same(
      await firstResults,
      first.map((_, i) => i * 2),
      'the tasks enqueued during start-up completed',
    );

    // Then killed every 20 ms while tasks run and results are awaited: it reconnects between kills.
    const during = startKiller(`${applicationName}:listen%`, 20);
    t.teardown(() => during.stop());
    const second = await stem.enqueueMany(
      Array.from({ length: 100 }, (_, i) => ({ task: work.name, args: { n: 20 + i }, options: { queue } })),
    );
    const secondResults = await Promise.all(second.map((handle) => handle.result({ timeoutMs: 30_000 })));
    const killedDuring = await during.stop();
    t.ok(killedDuring > 0, `killed the LISTEN connection ${killedDuring} times during the run`);
    t.same(
      secondResults,
      second.map((_, i) => (20 + i) * 2),
      'the tasks enqueued during the run completed',
    );
    t.same(
      [...runs.entries()].filter(([, count]) => count !== 1),
      [],
      'each task ran once (only the LISTEN connection was killed: no lease was lost)',
    );
    t.equal(runs.size, 120);
    await worker.stop();
    t.same(escaped, [], 'no rejection escaped');
  });

  t.test('every backend of the plugin killed repeatedly from start-up on: every task completes, nothing escapes', async (t) => {
    const applicationName = uniqueName('stem-killall');
    const queue = uniqueName('queue');
    const runs = new Map<number, number>();
    const work = defineTask({
      name: 'kill.all',
      handler: async (args: { n: number }) => {
        runs.set(args.n, (runs.get(args.n) ?? 0) + 1);
        await sleep(50);
        return args.n + 1;
      },
    });
    const stem = await Stem.create({
      plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), applicationName, pollIntervalMs: 100 })],
      tasks: [work],
      visibilityTimeout: '2s',
    });
    t.teardown(() => stem.close());
    // Pool and LISTEN connections alike, every 250 ms and after at least one more task ran (a fixed
    // rate starved a loaded CI machine: reconnecting took longer than the pause), from before the
    // worker starts until a third of the tasks ran; then the rest (some waiting for a lease lost to a kill) finish.
    const killer = startKiller(`${applicationName}%`, 250, () => runs.size);
    t.teardown(() => killer.stop());
    const worker = stem.worker({ queues: [queue], concurrency: 8 });
    await worker.start();
    const handles = await stem.enqueueMany(Array.from({ length: 60 }, (_, i) => ({ task: work.name, args: { n: i }, options: { queue } })));
    const pending = Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
    await waitFor(() => runs.size >= 20, 'a third of the tasks to run under the kills', 60_000);
    const killed = await killer.stop();
    const results = await pending;
    t.ok(killed > 0, `killed ${killed} backends`);
    t.same(
      results,
      handles.map((_, i) => i + 1),
      'every task completed with its result',
    );
    t.equal(runs.size, 60, 'every task ran (a kill between claim and reply may run one again: at least once)');
    await worker.stop();
    t.same(escaped, [], 'no rejection escaped');
  });
}
