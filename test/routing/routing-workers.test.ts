import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Stem } from '../../sdk/kernel.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { defineTask } from '../../sdk/task.js';
import type { Worker } from '../../sdk/worker.js';
import { CLAMPED_META, routing } from '../../plugins/routing/index.js';
import { redis } from '../../plugins/redis/index.js';
import { waitFor } from '../helpers/wait.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';

const fixture = fileURLToPath(new URL('../../fixtures/routing.yaml', import.meta.url));

/** One task run as a worker saw it. */
interface Run {
  task: string;
  workerId: string;
  queue: string;
  priority: number;
  clamped: unknown;
}

/** Tasks that record where and how they ran. */
function recordingTasks(runs: Run[], names: readonly string[]) {
  return names.map((name) =>
    defineTask({
      name,
      handler: async (_args: unknown, ctx) => {
        runs.push({
          task: ctx.name,
          workerId: ctx.workerId,
          queue: ctx.queue,
          priority: ctx.envelope.priority,
          clamped: ctx.meta[CLAMPED_META] ?? null,
        });
        return ctx.queue;
      },
    }),
  );
}

/** How a Stem for the scenarios is made: in memory, or on Redis in a fresh namespace. */
interface Transport {
  name: string;
  plugins(t: Test): StemPlugin[];
}

async function startWorkers(stem: Stem, options: Array<Parameters<Stem['worker']>[0]>): Promise<Worker[]> {
  const workers = options.map((option) => stem.worker({ concurrency: 1, shutdownGrace: '5s', ...option }));
  for (const worker of workers) await worker.start();
  return workers;
}

async function routesTheFixture(t: Test, transport: Transport): Promise<void> {
  await t.test(
    `${transport.name}: the fixture routes reports.generate (clamped into 2–7), billing.email-receipt and anything else through real workers`,
    async (t) => {
      const runs: Run[] = [];
      const stem = await Stem.create({
        tasks: recordingTasks(runs, ['reports.generate', 'billing.email-receipt', 'misc.cleanup']),
        plugins: [...transport.plugins(t), routing({ file: fixture })],
      });
      t.teardown(() => stem.close());
      // A worker naming no queues consumes the default queue (critical); the other names its queues.
      const [defaultWorker, namedWorker] = await startWorkers(stem, [
        { broadcasts: [] },
        { queues: ['reports', 'emails'], broadcasts: [] },
      ]);
      t.same(defaultWorker!.queues, ['critical']);
      const handles = [
        await stem.enqueue('reports.generate', {}, { priority: 9 }),
        await stem.enqueue('reports.generate', {}, { priority: 0 }),
        await stem.enqueue('billing.email-receipt', {}),
        await stem.enqueue('misc.cleanup', {}),
      ];
      const queues = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
      t.same(queues, ['reports', 'reports', 'emails', 'critical']);
      const byPriority = (run: Run) => `${run.task} ${run.queue} ${run.priority} ${JSON.stringify(run.clamped)}`;
      t.same(runs.map(byPriority).sort(), [
        'billing.email-receipt emails 5 null',
        'misc.cleanup critical 5 null',
        'reports.generate reports 2 {"from":0,"to":2}',
        'reports.generate reports 7 {"from":9,"to":7}',
      ]);
      t.ok(
        runs.filter((run) => run.queue === 'critical').every((run) => run.workerId === defaultWorker!.id),
        'critical ran on the worker that named no queues',
      );
      t.ok(runs.filter((run) => run.queue !== 'critical').every((run) => run.workerId === namedWorker!.id));
    },
  );
}

async function broadcastsOncePerSubscriber(t: Test, transport: Transport): Promise<void> {
  await t.test(
    `${transport.name}: two workers subscribed to maintenance each run a broadcast://maintenance task once; a third, not subscribed, runs nothing`,
    async (t) => {
      const runs: Run[] = [];
      const stem = await Stem.create({
        tasks: recordingTasks(runs, ['maintenance', 'maintenance.vacuum', 'misc.sentinel']),
        plugins: [
          ...transport.plugins(t),
          routing({
            config: {
              default_queue: 'critical',
              broadcasts: { maintenance: { delivery: 'fanout' } },
              routes: [{ match: { task: 'maintenance.*' }, broadcast: 'maintenance' }],
            },
          }),
        ],
      });
      t.teardown(() => stem.close());
      // The first names no broadcasts (subscribed by default to every one in the file), the second
      // names maintenance, the third names none explicitly.
      const workers = await startWorkers(stem, [
        { queues: ['own-a'] },
        { queues: ['own-b'], broadcasts: ['maintenance'] },
        { queues: ['own-c'], broadcasts: [] },
      ]);
      const [first, second, third] = workers as [Worker, Worker, Worker];
      t.same(first.broadcasts, ['maintenance']);
      t.same(third.broadcasts, []);

      await stem.enqueue('broadcast://maintenance', { reason: 'nightly' });
      await stem.enqueue('maintenance.vacuum', {}, { priority: 7 });
      await waitFor(() => runs.length >= 4, 'both subscribers to run both broadcasts', 60_000);
      // A sentinel on each worker's own queue proves every worker is consuming, the third included.
      const sentinels = await Promise.all(['own-a', 'own-b', 'own-c'].map((queue) => stem.enqueue('misc.sentinel', {}, { queue })));
      await Promise.all(sentinels.map((handle) => handle.result({ timeoutMs: 60_000 })));
      for (const worker of workers) await worker.stop();

      const broadcastRuns = (worker: Worker) =>
        runs
          .filter((run) => run.workerId === worker.id && run.task !== 'misc.sentinel')
          .map((run) => run.task)
          .sort();
      t.same(broadcastRuns(first), ['maintenance', 'maintenance.vacuum'], 'the worker subscribed by default ran each broadcast once');
      t.same(broadcastRuns(second), ['maintenance', 'maintenance.vacuum'], 'the worker that named the channel ran each broadcast once');
      t.same(broadcastRuns(third), [], 'the worker not subscribed ran no broadcast');
      t.equal(
        runs.filter((run) => run.workerId === third.id && run.task === 'misc.sentinel').length,
        1,
        'yet it was consuming its own queue',
      );
      t.ok(runs.filter((run) => run.task !== 'misc.sentinel').every((run) => run.queue === 'broadcast://maintenance'));
    },
  );
}

const memory: Transport = { name: 'memory', plugins: () => [] };
await routesTheFixture(t, memory);
await broadcastsOncePerSubscriber(t, memory);

if (await requireRedis(t)) {
  const onRedis: Transport = {
    name: 'redis',
    plugins(t) {
      const namespace = testNamespace('routing');
      t.teardown(() => deleteNamespace(namespace));
      return [redis({ url: REDIS_URL, namespace })];
    },
  };
  await routesTheFixture(t, onRedis);
  await broadcastsOncePerSubscriber(t, onRedis);
}
