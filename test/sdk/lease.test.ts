import t from 'tap';
import { Stem, defineTask } from '../../sdk/index.js';
import { sleep, waitFor } from '../helpers/wait.js';

t.test('a task whose worker stopped renewing its lease runs again on another worker', async (t) => {
  const runs: string[] = [];
  const job = defineTask({
    name: 'job',
    options: { visibilityTimeout: 150 },
    handler: async (_a: object, ctx) => {
      runs.push(ctx.workerId);
      return 'done';
    },
  });
  const stem = await Stem.create({ tasks: [job] });
  t.teardown(() => stem.close());
  const handle = await stem.enqueue(job, {});
  // A worker that took the delivery and died: it holds the lease and never renews or acks.
  const dead = await stem.broker.consumer({ queues: ['default'], consumerId: 'dead-worker' });
  const taken = await dead.fetch(1, new AbortController().signal);
  t.equal(taken.length, 1);
  const alive = stem.worker({ id: 'alive-worker' });
  await alive.start();
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'done');
  t.same(runs, ['alive-worker'], 'the task ran on the live worker once its lease ran out');
  await dead.close();
});

t.test('a task whose worker renews its lease is not run twice, however long it runs', async (t) => {
  let runs = 0;
  const long = defineTask({
    name: 'long',
    options: { visibilityTimeout: 150 },
    handler: async () => {
      runs++;
      await sleep(800); // over five lease lengths
      return runs;
    },
  });
  const stem = await Stem.create({ tasks: [long] });
  t.teardown(() => stem.close());
  await stem.worker({ id: 'a', concurrency: 2 }).start();
  await stem.worker({ id: 'b', concurrency: 2 }).start();
  const handle = await stem.enqueue(long, {});
  t.equal(await handle.result({ timeoutMs: 60_000 }), 1);
  await sleep(200);
  t.equal(runs, 1, 'ran exactly once');
  t.equal(await stem.broker.inflight('default'), 0);
});

t.test('a redelivered task reports its redelivery count to the dispatch phase', async (t) => {
  const seen: number[] = [];
  const job = defineTask({ name: 'job', options: { visibilityTimeout: 100 }, handler: async () => 'ok' });
  const stem = await Stem.create({
    tasks: [job],
    plugins: [
      {
        name: 'spy',
        apply: (s) =>
          s.hooks.dispatch.tapPromise('spy', async (delivery) => {
            seen.push(delivery.redeliveries);
            return undefined;
          }),
      },
    ],
  });
  t.teardown(() => stem.close());
  const handle = await stem.enqueue(job, {});
  const dead = await stem.broker.consumer({ queues: ['default'], consumerId: 'dead' });
  await dead.fetch(1, new AbortController().signal);
  await stem.worker().start();
  await handle.result({ timeoutMs: 60_000 });
  await waitFor(() => seen.length === 1, 'one dispatch');
  t.same(seen, [1]);
  await dead.close();
});
