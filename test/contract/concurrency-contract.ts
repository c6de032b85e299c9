import type { Test } from 'tap';
import { CONCURRENCY_HEADERS } from '../../sdk/concurrency-key.js';
import type { Broker, BrokerConsumer, Delivery } from '../../sdk/contracts/broker.js';
import type { Envelope } from '../../sdk/envelope.js';
import { type CaseBody, type ContractFactory, type Defer, fetchWithin, makeEnvelope, runContract, uniqueName } from './support.js';

/** How long a fetch that must come back empty is given. */
const QUIET_MS = 400;
/** A lease short enough to wait out in a test. */
const SHORT_LEASE_MS = 300;

function keyed(queue: string, key: string, limit: number, overrides: Partial<Envelope> = {}): Envelope {
  return makeEnvelope(queue, {
    ...overrides,
    headers: { [CONCURRENCY_HEADERS.key]: key, [CONCURRENCY_HEADERS.limit]: String(limit), ...overrides.headers },
  });
}

async function open(broker: Broker, defer: Defer, queue: string): Promise<BrokerConsumer> {
  const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
  defer(() => consumer.close());
  return consumer;
}

/**
 * Fetches the `count` deliveries expected (waiting as long as a broken broker alone would), then for QUIET_MS more, so
 * that any beyond `count` show. (It used to fetch until one fetch came back empty within QUIET_MS, which a stall of the
 * machine between two batches ended early.)
 */
async function drain(consumer: BrokerConsumer, count: number): Promise<Delivery[]> {
  const out = await collect(consumer, count);
  if (out.length < count) return out;
  return [...out, ...(await fetchWithin(consumer, 100, QUIET_MS))];
}

/** Fetches until `count` arrived or `timeoutMs` passed (a ceiling that only a broken broker reaches). */
async function collect(consumer: BrokerConsumer, count: number, timeoutMs = 30_000): Promise<Delivery[]> {
  const deadline = Date.now() + timeoutMs;
  const out: Delivery[] = [];
  while (out.length < count && Date.now() < deadline) out.push(...(await fetchWithin(consumer, count - out.length, deadline - Date.now())));
  return out;
}

function keysOf(deliveries: readonly Delivery[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const delivery of deliveries) {
    const key = delivery.envelope.headers[CONCURRENCY_HEADERS.key] ?? '(none)';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const cases: ReadonlyArray<readonly [string, CaseBody<Broker>]> = [
  [
    'a keyed task published while a consumer is busy with unkeyed ones is handed out within two fetches, by its priority',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      await broker.publish(Array.from({ length: 30 }, () => makeEnvelope(queue)));
      const consumer = await open(broker, defer, queue);
      // The first fetches see no keyed task (a Postgres consumer then claims unkeyed rows alone).
      const before = [...(await collect(consumer, 5)), ...(await collect(consumer, 5))];
      t.equal(before.length, 10, 'the backlog is being worked through');
      const urgent = keyed(queue, 'k', 1, { priority: 9 });
      await broker.publish([urgent]);
      // The handlers of the batches out take a while: longer than the 100 ms a Redis consumer keeps
      // reading a busy band alone (docs/redis.md), so every broker has looked at all its bands again.
      await new Promise((resolve) => setTimeout(resolve, 150));
      const next = [...(await collect(consumer, 5)), ...(await collect(consumer, 5))];
      t.ok(
        next.some((d) => d.envelope.id === urgent.id),
        'the keyed task came while 20 older unkeyed tasks still waited',
      );
      t.equal(next.length, 10, 'the backlog went on alongside it');
    },
  ],
  [
    'at most limit tasks of a key are out at once, and a full key holds up neither other keys nor unkeyed tasks',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      // The full key first: a queue that blocked at its head would hand out nothing else.
      const a = Array.from({ length: 5 }, () => keyed(queue, 'a', 2));
      const b = Array.from({ length: 3 }, () => keyed(queue, 'b', 2));
      const plain = [makeEnvelope(queue), makeEnvelope(queue)];
      await broker.publish([...a, ...b, ...plain]);
      const consumer = await open(broker, defer, queue);
      const first = await drain(consumer, 6);
      t.same(keysOf(first), { a: 2, b: 2, '(none)': 2 }, 'two of a, two of b, and both unkeyed tasks');
      t.same(
        first.filter((d) => d.envelope.headers[CONCURRENCY_HEADERS.key] === 'a').map((d) => d.envelope.id),
        [a[0]!.id, a[1]!.id],
        'the oldest of a first',
      );
      await broker.ack(first.filter((d) => d.envelope.headers[CONCURRENCY_HEADERS.key] === 'a').slice(0, 1));
      const next = await drain(consumer, 1);
      t.same(
        next.map((d) => d.envelope.id),
        [a[2]!.id],
        'one slot of a freed: exactly the next of a, nothing else',
      );
      t.equal(await broker.pending(queue), 3, 'pending counts the tasks waiting for a slot (a: 2, b: 1)');
    },
  ],
  [
    'with limit 1 a key runs in enqueue order, and a retry keeps its turn',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const tasks = Array.from({ length: 4 }, (_, i) => keyed(queue, 'k', 1, { args: { i } }));
      await broker.publish(tasks);
      const consumer = await open(broker, defer, queue);
      const [first] = await collect(consumer, 1);
      t.equal(first?.envelope.id, tasks[0]!.id);
      t.same(await drain(consumer, 0), [], 'nothing else of the key while the first runs');
      await broker.nack(first!, { requeue: true, delayMs: 150, envelope: { ...first!.envelope, attempt: 1 } });
      const [retried] = await collect(consumer, 1);
      t.equal(retried?.envelope.id, tasks[0]!.id, 'the retry comes back before the second task');
      t.equal(retried?.envelope.attempt, 1);
      const order = [retried!.envelope.id];
      await broker.ack([retried!]);
      for (let i = 1; i < tasks.length; i++) {
        const batch = await drain(consumer, 1);
        t.equal(batch.length, 1, `one at a time (step ${i})`);
        order.push(batch[0]!.envelope.id);
        await broker.ack(batch);
      }
      t.same(
        order,
        tasks.map((task) => task.id),
        'enqueue order',
      );
    },
  ],
  [
    'a slot held by a worker that died comes back when its lease runs out (kill -9 leaks nothing)',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const tasks = [0, 1].map(() => keyed(queue, 'k', 1, { visibilityTimeoutMs: SHORT_LEASE_MS }));
      await broker.publish(tasks);
      const dead = await broker.consumer({ queues: [queue], consumerId: uniqueName('dead') });
      const [held] = await collect(dead, 1);
      t.equal(held?.envelope.id, tasks[0]!.id, 'the dying worker took the first');
      await dead.close(); // never acked, never renewed: as after kill -9
      const survivor = await open(broker, defer, queue);
      const [again] = await collect(survivor, 1);
      t.equal(again?.envelope.id, tasks[0]!.id, 'the first is delivered again once its lease ran out');
      await broker.ack([again!]);
      const [second] = await collect(survivor, 1);
      t.equal(second?.envelope.id, tasks[1]!.id, 'then the key goes on');
      await broker.ack([second!]);
    },
  ],
  [
    'a dead letter and a dropped task give their slot back',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const tasks = [0, 1, 2].map(() => keyed(queue, 'k', 1));
      await broker.publish(tasks);
      const consumer = await open(broker, defer, queue);
      const [one] = await collect(consumer, 1);
      await broker.deadLetter(one!, 'unrecoverable');
      const [two] = await collect(consumer, 1);
      t.equal(two?.envelope.id, tasks[1]!.id);
      await broker.nack(two!, { requeue: false });
      const [three] = await collect(consumer, 1);
      t.equal(three?.envelope.id, tasks[2]!.id);
      await broker.ack([three!]);
    },
  ],
  [
    'a run-time limit wins over the tasks’ own, lets waiting tasks in at once, and shows in stats',
    async (t, broker, defer) => {
      const control = broker.concurrency;
      if (control === undefined) throw new Error('the broker under test lacks the concurrency capability');
      const queue = uniqueName('queue');
      await broker.publish(Array.from({ length: 5 }, () => keyed(queue, 'k', 1)));
      const consumer = await open(broker, defer, queue);
      t.equal((await drain(consumer, 1)).length, 1);
      t.same(await control.stats(queue), [{ key: 'k', running: 1, waiting: 4, limit: 1 }]);
      await control.setLimit(queue, 'k', 3);
      t.equal((await drain(consumer, 2)).length, 2, 'two more once the limit is 3');
      t.same(await control.stats(queue), [{ key: 'k', running: 3, waiting: 2, limit: 3 }]);
      await control.setLimit(queue, 'k', null);
      t.same(await control.stats(queue), [{ key: 'k', running: 3, waiting: 2, limit: 1 }], 'cleared: the tasks’ own limit again');
    },
  ],
];

/**
 * The `concurrency` capability of a broker (docs/flow-control.md): per-key limits enforced by the
 * broker across consumers, no head-of-line blocking, FIFO per key with limit 1 (retries keeping
 * their turn), slots given back by ack, dead letter, drop and lease expiry, run-time limits.
 */
export async function concurrencyContract(t: Test, factory: ContractFactory<Broker>): Promise<void> {
  await runContract(t, 'broker concurrency capability', factory, cases);
}
