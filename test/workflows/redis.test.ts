// Workflows on Redis: the store contract, the order scenarios, and 1,000 concurrent runs.
import t from 'tap';
import { redis, RedisWorkflowStore } from '../../plugins/redis/index.js';
import { defineWorkflow, workflows, workflowsOf } from '../../plugins/workflows/index.js';
import { Stem } from '../../sdk/index.js';
import { workflowStoreContract } from '../contract/index.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { waitFor } from '../helpers/wait.js';
import { orderScenarios } from './order-scenarios.js';

if (await requireRedis(t)) {
  const namespace = testNamespace('wf');
  t.teardown(() => deleteNamespace(namespace));

  await workflowStoreContract(t, { name: 'redis', create: () => RedisWorkflowStore.connect(REDIS_URL, { namespace }) });

  await orderScenarios(t, { plugins: () => [redis({ url: REDIS_URL, namespace })] });

  await t.test('1,000 concurrent runs of a 3-step workflow with an event each all finish', async (t) => {
    const count = 1_000;
    const flow = defineWorkflow({
      name: 'bulk.three',
      run: async (input: { n: number }, wf) => {
        const a = await wf.step('one', () => input.n);
        const b = await wf.step('two', () => a + 1);
        const event = await wf.waitForEvent<number>('poke', { key: `${wf.runId}` });
        return await wf.step('three', () => b + event);
      },
    });
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace }), workflows({ definitions: [flow] })] });
    t.teardown(() => stem.close());
    await stem.worker({ concurrency: 64 }).start();
    const ops = workflowsOf(stem);
    const handles = await Promise.all(Array.from({ length: count }, (_, n) => ops.start(flow, { n })));
    // Half the events go out before their run waits (buffered), half after.
    await Promise.all(handles.filter((_, n) => n % 2 === 0).map((handle) => ops.emit('poke', handle.id, 10)));
    await waitFor(
      async () => (await ops.list({ workflow: 'bulk.three', status: 'waiting', limit: count })).length >= count / 2,
      'half the runs to wait',
      120_000,
    );
    await Promise.all(handles.filter((_, n) => n % 2 === 1).map((handle) => ops.emit('poke', handle.id, 10)));
    const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 300_000 })));
    t.same(
      results,
      Array.from({ length: count }, (_, n) => n + 11),
      'every run finished with its own result',
    );
  });
}
