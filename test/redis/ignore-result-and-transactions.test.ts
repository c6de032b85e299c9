import t from 'tap';
import { defineTask, Stem, TransactionNotSupportedError } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { ignoreResultCases } from '../helpers/ignore-result-cases.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  const namespace = testNamespace('ignore');
  t.teardown(() => deleteNamespace(namespace));

  t.test('ignoreResult on Redis', (t) => ignoreResultCases(t, () => [redis({ url: REDIS_URL, namespace })]));

  t.test('a Redis broker given a transaction refuses the enqueue with TransactionNotSupportedError, publishing nothing', async (t) => {
    const task = defineTask({ name: 'tx.refused', handler: async () => 'ran' });
    const queue = `${namespace}-tx`;
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })], tasks: [task], defaultQueue: queue });
    t.teardown(() => stem.close());
    const transaction = { query: async () => undefined };
    const one = await stem.enqueue(task, {}, { transaction }).catch((e: unknown) => e);
    t.type(one, TransactionNotSupportedError);
    t.equal((one as TransactionNotSupportedError).code, 'transaction-not-supported');
    t.match((one as Error).message, /RedisBroker cannot enqueue inside the caller's transaction/);
    await t.rejects(stem.enqueueMany([{ task, args: {} }], { transaction }), TransactionNotSupportedError, 'enqueueMany too');
    t.equal(await stem.broker.pending(queue), 0, 'nothing was published');
  });
}
