import t, { type Test } from 'tap';
import { Stem, type Delivery, type ResultBackend, type StemPlugin, type TaskStatus } from '../../sdk/index.js';
import { CompletionBatch } from '../../sdk/completion-batch.js';
import { redis } from '../../plugins/redis/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';

/** The backend, with its `set` calls counted (the real store underneath). */
function counting(backend: ResultBackend): { backend: ResultBackend; calls: () => number } {
  let calls = 0;
  const counted = Object.create(backend) as ResultBackend;
  counted.set = (statuses, options) => {
    calls++;
    return backend.set(statuses, options);
  };
  return { backend: counted, calls: () => calls };
}

function succeeded(delivery: Delivery, result: unknown): TaskStatus {
  const { envelope } = delivery;
  return { id: envelope.id, state: 'succeeded', name: envelope.name, queue: envelope.queue, result, attempt: 0, updatedAt: Date.now() };
}

/** Eleven real deliveries of `queue`: the first is the bad one. */
async function fetchEleven(stem: Stem, queue: string): Promise<Delivery[]> {
  await stem.enqueueMany(Array.from({ length: 11 }, (_, n) => ({ task: 'batch.any', args: { n }, options: { queue } })));
  const consumer = await stem.broker.consumer({ queues: [queue], broadcasts: [], consumerId: `batch-${queue}` });
  const deliveries: Delivery[] = [];
  while (deliveries.length < 11) deliveries.push(...(await consumer.fetch(11 - deliveries.length, new AbortController().signal)));
  await consumer.close();
  return deliveries.sort((a, b) => (a.envelope.args as { n: number }).n - (b.envelope.args as { n: number }).n);
}

async function splitScenario(t: Test, plugin: StemPlugin): Promise<void> {
  const stem = await Stem.create({ plugins: [plugin] });
  t.teardown(() => stem.close());
  const queue = 'batch';
  const deliveries = await fetchEleven(stem, queue);
  const { backend, calls } = counting(stem.backend);
  const refused: Array<{ id: string; error: string; delivery: Delivery | undefined }> = [];
  const warnings: string[] = [];
  const batch = new CompletionBatch(
    stem.broker,
    backend,
    60_000,
    (message) => warnings.push(message),
    (status, error, delivery) => refused.push({ id: status.id, error: error.message, delivery }),
  );
  for (const [n, delivery] of deliveries.entries()) {
    batch.record(succeeded(delivery, n === 0 ? { total: 10n } : { n }));
    batch.ack(delivery);
  }
  await batch.flush();
  const [bad, ...healthy] = deliveries;
  const states = await Promise.all(healthy.map((delivery) => stem.status(delivery.envelope.id)));
  t.same(
    states.map((status) => status.state),
    new Array(10).fill('succeeded'),
    'the ten healthy states landed',
  );
  t.same(
    states.map((status) => status.result),
    healthy.map((_, i) => ({ n: i + 1 })),
  );
  t.same(
    refused.map((entry) => entry.id),
    [bad!.envelope.id],
    'the bad state alone was refused',
  );
  t.match(refused[0]!.error, /BigInt/);
  t.equal(refused[0]!.delivery, bad, 'with the delivery whose ack was withheld, for the worker to fail that task');
  t.equal((await stem.status(bad!.envelope.id)).state, 'queued', 'nothing was written for the bad task');
  t.same(warnings, []);
  // Halving: at most two writes per level of the split, not five of the whole batch.
  t.ok(calls() <= 2 * Math.ceil(Math.log2(11)) + 1, `${calls()} writes`);
}

t.test('a batch write that fails is split down to the state it cannot write; the others land at once (Redis)', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('batch-split');
  t.teardown(() => deleteNamespace(namespace));
  await splitScenario(t, redis({ url: REDIS_URL, namespace }));
});

t.test('a batch write that fails is split down to the state it cannot write; the others land at once (Postgres)', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueSchema('batch_split');
  t.teardown(() => dropSchema(schema));
  await splitScenario(t, postgres({ url: testUrl, schema }));
});

t.test(
  'when no write lands at all (the backend is gone), no state is refused: the tasks are left to redelivery, in a few calls per attempt',
  async (t) => {
    const stem = await Stem.create();
    const deliveries = await fetchEleven(stem, 'gone');
    const { backend, calls } = counting(stem.backend);
    await stem.backend.close?.();
    const refused: string[] = [];
    const warnings: string[] = [];
    const batch = new CompletionBatch(
      stem.broker,
      backend,
      60_000,
      (message) => warnings.push(message),
      (status) => refused.push(status.id),
    );
    for (const delivery of deliveries) {
      batch.record(succeeded(delivery, null));
      batch.ack(delivery);
    }
    await batch.flush();
    t.same(refused, [], 'no task is failed for an outage');
    t.match(warnings, [/could not write task states after 5 attempts.*redelivered/]);
    // Each attempt probes a group and its two halves: 1+2, then 2×3, 4×3, 8×3, 16×3 at most.
    t.ok(calls() <= 3 + 6 + 12 + 24 + 48, `${calls()} writes`);
    await stem.close().catch(() => undefined);
  },
);
