import t from 'tap';
import { defineWorkflow, workflows, workflowsOf } from '../../plugins/workflows/index.js';
import { MemoryBroker, MemoryResultBackend, MemoryWorkflowStore, Stem, type StemPlugin } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { orderScenarios } from './order-scenarios.js';

// One broker, backend and store for the whole file, so that two Stems (a deploy) share them.
const broker = new MemoryBroker();
const backend = new MemoryResultBackend();
const store = new MemoryWorkflowStore();
const shared = (): StemPlugin => ({
  name: 'shared-memory',
  apply(stem) {
    stem.provide('broker', broker);
    stem.provide('backend', backend);
    stem.provide('workflowStore', store);
  },
});

await orderScenarios(t, { plugins: () => [shared()] });

t.test('a version mismatch fails the run even when the run function catches it', async (t) => {
  const name = 'orders.swallowing';
  const v1 = defineWorkflow({
    name,
    run: async (_: object, wf) => {
      await wf.step('reserve', () => 1);
      await wf.waitForEvent('go', { key: wf.runId });
      return 'v1';
    },
  });
  const changed = defineWorkflow({
    name,
    run: async (_: object, wf) => {
      try {
        await wf.step('charge', () => 1);
      } catch {
        // swallowed: the run must still fail
      }
      return 'changed';
    },
  });
  const first = await Stem.create({ plugins: [shared(), workflows({ definitions: [v1] })] });
  await first.worker({ concurrency: 1 }).start();
  const handle = await workflowsOf(first).start(v1, {});
  await waitFor(async () => (await store.getRun(handle.id))?.status === 'waiting', 'the run to wait');
  await first.close();
  const second = await Stem.create({ plugins: [shared(), workflows({ definitions: [changed] })] });
  t.teardown(() => second.close());
  await second.worker({ concurrency: 1 }).start();
  await workflowsOf(second).emit('go', handle.id);
  const run = await workflowsOf(second).wait(handle.id, { timeoutMs: 60_000 });
  t.equal(run.status, 'failed');
  t.equal(run.error?.code, 'workflow-version-mismatch');
});
