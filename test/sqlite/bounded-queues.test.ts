import t from 'tap';
import { SqliteBroker, SqliteConnection } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import { CONCURRENCY_HEADERS } from '../../sdk/concurrency-key.js';
import type { PublishReport } from '../../sdk/contracts/broker.js';
import { QUEUE_BOUND_HEADERS } from '../../sdk/queue-bound.js';
import { boundedQueueContract } from '../contract/index.js';
import { fetchWithin, makeEnvelope, uniqueName } from '../contract/support.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

const dir = tempDir('bounded');
t.teardown(() => dir.cleanup());
const options = resolveSqliteOptions({ url: dir.url() });
await boundedQueueContract(t, {
  name: 'sqlite',
  create: async () =>
    new SqliteBroker(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs }),
});

// As on memory and Redis: drop-oldest takes the oldest task a worker may take now, never a keyed
// task waiting for its key's slot (it stays, counted, until its turn).
t.test('sqlite: drop-oldest leaves a keyed task waiting for its slot and drops the oldest runnable one', async (t) => {
  const broker = new SqliteBroker(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs });
  t.teardown(() => broker.close());
  const queue = uniqueName('queue');
  const keyed = () => makeEnvelope(queue, { headers: { [CONCURRENCY_HEADERS.key]: 'k', [CONCURRENCY_HEADERS.limit]: '1' } });
  const [k1, k2, k3] = [keyed(), keyed(), keyed()];
  const plain = makeEnvelope(queue);
  for (const envelope of [k1!, k2!, k3!, plain]) await broker.publish([envelope]);
  const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
  t.teardown(() => consumer.close());
  const leased = await fetchWithin(consumer, 1, 30_000);
  t.same(
    leased.map((delivery) => delivery.envelope.id),
    [k1!.id],
    'k1 holds the key’s only slot',
  );
  const newest = makeEnvelope(queue, { headers: { [QUEUE_BOUND_HEADERS.maxLength]: '3', [QUEUE_BOUND_HEADERS.overflow]: 'drop-oldest' } });
  const report = await broker.publish([newest]);
  t.same(
    (report as PublishReport).dropped.map((letter) => letter.id),
    [plain.id],
    'the unkeyed task was dropped, not k2 (waiting for its slot, though older)',
  );
  t.equal(await broker.pending(queue), 3, 'k2, k3 and the newest wait');
  t.equal((await broker.listDeadLetters(queue)).total, 1, 'the dropped task is a dead letter');
  await broker.publish([
    makeEnvelope(queue, { headers: { [QUEUE_BOUND_HEADERS.maxLength]: '3', [QUEUE_BOUND_HEADERS.overflow]: 'drop-oldest' } }),
  ]);
  t.same(
    (await broker.listDeadLetters(queue)).entries.map((letter) => letter.id),
    [plain.id, newest.id],
    'then the next runnable one; k2 and k3 still wait their turn',
  );
});
