import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { defineTask, Stem } from '../../sdk/index.js';
import { taskRetryCases } from '../helpers/task-retry-cases.js';
import { uniqueName } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  const namespace = testNamespace('retry');
  t.teardown(() => deleteNamespace(namespace));
  t.test('stem.retry and stem.listTasks on Redis', (t) => taskRetryCases(t, () => [redis({ url: REDIS_URL, namespace })]));

  t.test('a task only enqueued is listed as queued with listQueued: true, and from its first run on without it', async (t) => {
    const noop = defineTask({ name: 'listing.noop', handler: async () => 'done' });
    for (const listQueued of [false, true]) {
      const queue = uniqueName('listq');
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace, listQueued })], tasks: [noop], defaultQueue: queue });
      t.teardown(() => stem.close());
      const [single] = await stem.enqueueMany([{ task: noop, args: {} }]);
      const bulk = await stem.enqueueMany(Array.from({ length: 5 }, () => ({ task: noop, args: {} })));
      const queued = await stem.listTasks({ state: 'queued', queue });
      t.equal(
        queued.tasks.length,
        listQueued ? 6 : 0,
        `listQueued: ${listQueued}: queued tasks listed at enqueue (one, then five at once)`,
      );
      const worker = stem.worker({ queues: [queue] });
      await worker.start();
      for (const handle of [single!, ...bulk]) await handle.result({ timeoutMs: 60_000 });
      const succeeded = await stem.listTasks({ state: 'succeeded', queue });
      t.equal(succeeded.tasks.length, 6, `listQueued: ${listQueued}: all six listed once they ran`);
      t.same((await stem.listTasks({ state: 'queued', queue })).tasks, [], 'and no longer as queued');
      await worker.stop();
    }
  });

  t.test('listQueued must be a boolean', async (t) => {
    t.throws(() => redis({ url: REDIS_URL, listQueued: 'yes' as unknown as boolean }), /option "listQueued" must be true or false/);
  });
}
