// kill -9 of a worker that holds a key's only slot: the slot is not leaked. The task's lease runs
// out, it is delivered again first (FIFO per key holds), and the key's next tasks follow.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import { defineTask, Stem, type StemPlugin } from '../../sdk/index.js';
import { uniqueName } from '../contract/support.js';
import { startScript } from '../helpers/run-stem.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { tempDir, uniqueNamespace } from '../sqlite/sqlite-harness.js';

const script = join(import.meta.dirname, 'fixtures', 'keyed-worker.ts');

async function killedMidTask(
  t: Test,
  broker: 'redis' | 'postgres' | 'sqlite',
  env: Record<string, string>,
  plugin: () => StemPlugin,
): Promise<void> {
  const queue = uniqueName('queue');
  const order: number[] = [];
  const ledger = defineTask({
    name: 'flow.ledger',
    options: { queue, concurrencyKey: (args: { account: string }) => args.account, ordered: true, visibilityTimeout: '1s' },
    handler: async (args: { account: string; i: number }) => {
      order.push(args.i);
      return args.i;
    },
  });
  const stem = await Stem.create({ plugins: [plugin()], tasks: [ledger] });
  t.teardown(() => stem.close());
  const handles = await stem.enqueueMany([0, 1, 2].map((i) => ({ task: ledger, args: { account: 'acct', i } })));

  const victim = await startScript(script, { env: { ...env, FC_BROKER: broker, FC_QUEUE: queue } });
  t.teardown(() => victim.stop('SIGKILL'));
  await victim.waitForOutput(/started 0/);
  await victim.stop('SIGKILL');
  t.notMatch(victim.output(), /started 1/, 'the dying worker held the key: it never started the second task');

  await stem.worker({ queues: [queue], concurrency: 4 }).start();
  t.same(await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 30_000 }))), [0, 1, 2], 'every task finished');
  t.same(order, [0, 1, 2], 'the killed task ran again first, then the rest of the key in order');
}

if (await requireRedis(t)) {
  t.test('redis: a worker killed with SIGKILL mid-task leaks no slot of its key', async (t) => {
    const namespace = testNamespace('flowkill');
    t.teardown(() => deleteNamespace(namespace));
    await killedMidTask(t, 'redis', { FC_URL: REDIS_URL, FC_NAMESPACE: namespace }, () => redis({ url: REDIS_URL, namespace }));
  });
}

if (await requirePostgres(t)) {
  t.test('postgres: a worker killed with SIGKILL mid-task leaks no slot of its key', async (t) => {
    const schema = uniqueSchema('flowkill');
    await runMigrations(testUrl, schema);
    t.teardown(() => dropSchema(schema));
    const namespace = uniqueName('ns');
    await killedMidTask(t, 'postgres', { FC_URL: testUrl, FC_SCHEMA: schema, FC_NAMESPACE: namespace }, () =>
      postgres({ url: testUrl, schema, namespace, migrate: false, poolSize: 2 }),
    );
  });
}

t.test('sqlite: a worker process killed with SIGKILL mid-task leaks no slot of its key', async (t) => {
  const dir = tempDir('flowkill');
  t.teardown(() => dir.cleanup());
  const namespace = uniqueNamespace('flowkill');
  await killedMidTask(t, 'sqlite', { FC_URL: dir.url(), FC_NAMESPACE: namespace }, () => sqlite({ url: dir.url(), namespace }));
});
