import t from 'tap';
import { fileURLToPath } from 'node:url';
import { Stem, defineTask } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { RedisBroker } from '../../plugins/redis/index.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { startNode, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';

const CRASH_WORKER = fileURLToPath(new URL('./crash-worker.ts', import.meta.url));

if (await requireRedis(t)) {
  t.test(
    'a worker dead-letters stream entries that are not JSON or miss fields as malformed-envelope, and runs the next task',
    async (t) => {
      const namespace = testNamespace('poison');
      t.teardown(() => deleteNamespace(namespace));
      const ran: string[] = [];
      const fine = defineTask({ name: 'poison.fine', handler: async (args: { n: number }) => void ran.push(`fine ${args.n}`) });
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace, blockMs: 500 })], tasks: [fine] });
      t.teardown(() => stem.close());
      const broker = stem.broker as RedisBroker;
      const admin = await adminClient();
      t.teardown(() => admin.disconnect());
      const stream = broker.keys('default').stream('5');
      await admin.xadd(stream, '*', 'e', '{"id": "half an envelope", "name":');
      await admin.xadd(stream, '*', 'e', JSON.stringify({ id: 'no-queue', name: 'poison.fine', args: {} }));
      await admin.xadd(stream, '*', 'e', '[1, 2, 3]');
      const good = await stem.enqueue(fine, { n: 1 });
      await stem.worker().start();
      await good.result({ timeoutMs: 60_000 });
      await waitFor(async () => (await stem.broker.listDeadLetters('default')).total === 3, 'three dead letters');
      const letters = (await stem.broker.listDeadLetters('default')).entries;
      t.same(
        letters.map((letter) => letter.reason),
        ['malformed-envelope', 'malformed-envelope', 'malformed-envelope'],
      );
      t.match(
        letters.map((letter) => letter.meta.error),
        [/not JSON/, /field "queue" must be a string/, /not a JSON object/],
      );
      t.same(ran, ['fine 1'], 'only the valid task ran');
    },
  );

  t.test(
    'a task that crashes its worker process is dead-lettered as redelivery-limit after maxRedeliveries, and the other tasks run',
    async (t) => {
      const namespace = testNamespace('crash');
      const admin = await adminClient();
      const workers: RunningStem[] = [];
      t.teardown(async () => {
        await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
        admin.disconnect();
        await deleteNamespace(namespace);
      });
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
      t.teardown(() => stem.close());
      const crash = await stem.enqueue('poison.crash', {}, { queue: 'poison', visibilityTimeout: '1s' });
      await stem.enqueueMany(Array.from({ length: 10 }, (_, n) => ({ task: 'poison.ok', args: { n }, options: { queue: 'poison' } })));

      const env = { CRASH_REDIS_URL: REDIS_URL, CRASH_NAMESPACE: namespace, CRASH_MAX_REDELIVERIES: '1' };
      const start = async (): Promise<void> => {
        const worker = startNode(['--import', 'tsx', CRASH_WORKER], { env });
        workers.push(worker);
        await worker.waitForOutput(/crash-worker ready/).catch(() => undefined);
      };
      await Promise.all([start(), start()]);
      // A supervisor's job: keep two workers alive while the poison task takes them down.
      await waitFor(
        async () => {
          const alive = workers.filter((worker) => worker.child.exitCode === null).length;
          for (let i = alive; i < 2; i++) await start();
          return (await stem.broker.listDeadLetters('poison')).total === 1 && (await admin.scard(`${namespace}:ok`)) === 10;
        },
        'the dead letter and the ten other tasks',
        60_000,
      );

      const [letter] = (await stem.broker.listDeadLetters('poison')).entries;
      t.equal(letter!.id, crash.id);
      t.equal(letter!.reason, 'redelivery-limit');
      t.match(letter!.meta, { redeliveries: 2, maxRedeliveries: 1, error: { type: 'RedeliveryLimitError' } });
      t.equal(
        Number(await admin.get(`${namespace}:crashes`)),
        2,
        'it took down two workers (the first delivery and one redelivery), then no more',
      );
      t.equal(await admin.scard(`${namespace}:ok`), 10, 'every other task ran');
      t.equal((await stem.status(crash.id)).state, 'failed');
    },
  );
}
