import t from 'tap';
import { defineTask, ListingNotSupportedError, MemoryResultBackend, Stem } from '../../sdk/index.js';
import { taskRetryCases } from '../helpers/task-retry-cases.js';

t.test('stem.retry and stem.listTasks on the memory default', (t) => taskRetryCases(t, () => []));

t.test('extendedResults records the args on every state', async (t) => {
  const echo = defineTask({ name: 'extended.echo', handler: async (args: { s: string }) => args.s });
  const stem = await Stem.create({ tasks: [echo], extendedResults: true });
  t.teardown(() => stem.close());
  const handle = await stem.enqueue(echo, { s: 'hi' });
  t.same((await stem.status(handle.id)).args, { s: 'hi' }, 'queued');
  const worker = stem.worker();
  await worker.start();
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'hi');
  const succeeded = await stem.status(handle.id);
  t.same(succeeded.args, { s: 'hi' }, 'succeeded');
  t.equal(succeeded.envelope, undefined, 'the envelope only on failed and cancelled');
  t.same((await stem.listTasks({ state: 'succeeded' })).tasks, [succeeded]);
});

t.test('listTasks on a backend that cannot list is a ListingNotSupportedError', async (t) => {
  const memory = new MemoryResultBackend();
  const backend = Object.create(memory) as MemoryResultBackend;
  Object.defineProperty(backend, 'listTasks', { value: undefined });
  const stem = await Stem.create({ plugins: [{ name: 'no-listing', apply: (s) => s.provide('backend', backend) }] });
  t.teardown(async () => {
    await stem.close();
    await memory.close();
  });
  const error = await stem.listTasks({ state: 'failed' }).catch((e: unknown) => e);
  t.type(error, ListingNotSupportedError);
  t.match((error as Error).message, /cannot list tasks/);
});
