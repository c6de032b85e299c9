import type { Test } from 'tap';
import type { Broker, BrokerConsumer, ConsumerOptions, Delivery } from '../../sdk/contracts/broker.js';
import { broadcastAddress, type Envelope } from '../../sdk/envelope.js';
import { uuidv7 } from '../../sdk/id.js';
import {
  CLOCK_SLACK_MS,
  type CaseBody,
  type ContractFactory,
  type Defer,
  fetchWithin,
  makeEnvelope,
  retryOnStall,
  runContract,
  STALLED,
  sleep,
  uniqueName,
} from './support.js';
import { generationOf } from '../../sdk/state-order.js';

/** How long a fetch that must come back empty is given; several times the short leases used here. */
const QUIET_MS = 500;
/** A lease short enough to wait out in a test. */
const SHORT_LEASE_MS = 300;
/** The ceiling of a wait for a delivery that must come; only a broken broker reaches it, a slow machine does not. */
const DELIVERY_CEILING_MS = 30_000;

/** Opens a consumer that is closed at the end of the case. */
async function openConsumer(
  broker: Broker,
  defer: Defer,
  options: Partial<ConsumerOptions> & { queues: readonly string[] },
): Promise<BrokerConsumer> {
  const consumer = await broker.consumer({ consumerId: uniqueName('worker'), ...options });
  defer(() => consumer.close());
  return consumer;
}

/** A fresh queue and a consumer of it. */
async function openQueue(broker: Broker, defer: Defer): Promise<{ queue: string; consumer: BrokerConsumer }> {
  const queue = uniqueName('queue');
  return { queue, consumer: await openConsumer(broker, defer, { queues: [queue] }) };
}

/** Fetches until `count` deliveries arrived or `timeoutMs` passed; a broker may hand out smaller batches. */
async function collect(consumer: BrokerConsumer, count: number, timeoutMs = DELIVERY_CEILING_MS): Promise<Delivery[]> {
  const deadline = Date.now() + timeoutMs;
  const deliveries: Delivery[] = [];
  while (deliveries.length < count && Date.now() < deadline) {
    deliveries.push(...(await fetchWithin(consumer, count - deliveries.length, deadline - Date.now())));
  }
  return deliveries;
}

/** Fetches exactly one delivery, failing the case when none arrives. */
async function collectOne(t: Test, consumer: BrokerConsumer, timeoutMs?: number): Promise<Delivery> {
  const [delivery] = await collect(consumer, 1, timeoutMs);
  if (delivery === undefined) throw new Error('expected a delivery, none arrived in time');
  t.pass(`delivered ${delivery.envelope.id}`);
  return delivery;
}

/**
 * Fetches `count` messages that must not be delivered before `dueAt` (epoch ms): a nack or replay delay, or a notBefore.
 * What arrives is checked against the clock when it arrives, so a slow machine (a fetch that starts late) can only see
 * the messages due, never fail the case; while nothing arrived early, they are pending and not leased (`whileHeld` adds checks).
 */
async function fetchDelayed(
  t: Test,
  broker: Broker,
  consumer: BrokerConsumer,
  queue: string,
  count: number,
  dueAt: number,
  whileHeld?: () => Promise<void>,
): Promise<Delivery[]> {
  const early = await fetchWithin(consumer, 10, 300);
  const earlyAt = Date.now();
  if (early.length === 0) {
    t.equal(await broker.pending(queue), count, 'a delayed message is pending');
    t.equal(await broker.inflight(queue), 0, 'and not leased');
    await whileHeld?.();
  } else {
    t.ok(earlyAt >= dueAt - CLOCK_SLACK_MS, 'a fetch that started late got it, and only once it was due');
  }
  const later = await collect(consumer, count - early.length);
  t.ok(later.length === 0 || Date.now() >= dueAt - CLOCK_SLACK_MS, 'delivered only once due');
  const deliveries = [...early, ...later];
  t.equal(deliveries.length, count, `all ${count} delivered`);
  return deliveries;
}

/** The task ids of envelopes, dead letters or deliveries, in order. */
function ids(items: ReadonlyArray<{ id: string } | { envelope: Envelope }>): string[] {
  return items.map((item) => ('id' in item ? item.id : item.envelope.id));
}

/** Publishes `count` envelopes to `queue`, leases them, and dead-letters each (oldest first). */
async function deadLetterSome(broker: Broker, consumer: BrokerConsumer, queue: string, count: number): Promise<Envelope[]> {
  const envelopes = Array.from({ length: count }, (_, i) => makeEnvelope(queue, { attempt: 2, args: { i } }));
  await broker.publish(envelopes);
  const deliveries = await collect(consumer, count);
  const byId = new Map(deliveries.map((delivery) => [delivery.envelope.id, delivery]));
  for (const envelope of envelopes) {
    const delivery = byId.get(envelope.id);
    if (delivery === undefined) throw new Error(`envelope ${envelope.id} was not delivered`);
    await broker.deadLetter(delivery, 'max-retries-exhausted', { attempt: 2 });
    // Distinct dead-letter times, so that "oldest first" has one answer on every store.
    await sleep(5);
  }
  return envelopes;
}

const cases: ReadonlyArray<readonly [string, CaseBody<Broker>]> = [
  [
    'a published envelope is delivered intact, and once acked is never delivered again',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelope = makeEnvelope(queue, {
        visibilityTimeoutMs: SHORT_LEASE_MS,
        args: { to: 'ada@example.com', tags: ['a', 'b'], n: 3 },
        headers: { tenant: 'acme' },
        meta: { 'contract.marker': { nested: true } },
        expiresAt: Date.now() + 60_000,
      });
      const before = Date.now();
      await broker.publish([envelope]);
      const delivery = await collectOne(t, consumer);
      t.same(delivery.envelope, envelope, 'every field survives the trip');
      t.equal(delivery.queue, queue);
      t.equal(delivery.redeliveries, 0);
      t.type(delivery.receipt, 'string');
      t.ok(delivery.leaseExpiresAt >= before + SHORT_LEASE_MS - CLOCK_SLACK_MS, 'leased for the visibility timeout');
      await broker.ack([delivery]);
      t.same(
        await fetchWithin(consumer, 10, QUIET_MS + SHORT_LEASE_MS),
        [],
        'not delivered again, even after its lease would have run out',
      );
      t.equal(await broker.pending(queue), 0);
      t.equal(await broker.inflight(queue), 0);
    },
  ],
  [
    'a consumer of one queue never sees messages routed to another',
    async (t, broker, defer) => {
      const [queueA, queueB] = [uniqueName('queue-a'), uniqueName('queue-b')];
      const consumerA = await openConsumer(broker, defer, { queues: [queueA] });
      const consumerB = await openConsumer(broker, defer, { queues: [queueB] });
      const toB = makeEnvelope(queueB);
      await broker.publish([toB]);
      t.same(await fetchWithin(consumerA, 10, QUIET_MS), [], 'the consumer of A gets nothing');
      const delivery = await collectOne(t, consumerB);
      t.equal(delivery.envelope.id, toB.id);
      t.equal(delivery.queue, queueB);
      await broker.ack([delivery]);

      const both = await openConsumer(broker, defer, { queues: [queueA, queueB] });
      await broker.publish([makeEnvelope(queueA), makeEnvelope(queueB)]);
      const deliveries = await collect(both, 2);
      t.same(deliveries.map((d) => d.queue).sort(), [queueA, queueB].sort(), 'a consumer of both queues reads both');
      for (const d of deliveries) t.equal(d.queue, d.envelope.queue, 'each delivery names the queue it came from');
      await broker.ack(deliveries);
    },
  ],
  [
    'pending counts ready and delayed messages, inflight counts leased ones, purge empties the queue',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      await broker.publish([
        makeEnvelope(queue),
        makeEnvelope(queue),
        makeEnvelope(queue),
        makeEnvelope(queue, { notBefore: Date.now() + 60_000 }),
      ]);
      t.equal(await broker.pending(queue), 4, 'three ready and one delayed');
      t.equal(await broker.inflight(queue), 0);
      t.ok((await broker.listQueues()).includes(queue), 'the queue is listed');
      const leased = await collect(consumer, 2);
      t.equal(leased.length, 2);
      t.equal(await broker.pending(queue), 2, 'leased messages are not pending');
      t.equal(await broker.inflight(queue), 2);
      await broker.ack(leased);
      t.equal(await broker.inflight(queue), 0, 'acked messages are not inflight');
      t.equal(await broker.purge(queue), 2, 'purge reports what it deleted');
      t.equal(await broker.pending(queue), 0);
      t.same(await fetchWithin(consumer, 10, QUIET_MS), []);
    },
  ],
  [
    'nack with requeue delivers the message again; nack without requeue drops it',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelope = makeEnvelope(queue, { visibilityTimeoutMs: SHORT_LEASE_MS });
      await broker.publish([envelope]);
      const first = await collectOne(t, consumer);
      await broker.nack(first, { requeue: true });
      const second = await collectOne(t, consumer);
      t.equal(second.envelope.id, envelope.id, 'the requeued message comes back');
      await broker.nack(second, { requeue: false });
      t.same(await fetchWithin(consumer, 10, QUIET_MS + SHORT_LEASE_MS), [], 'the dropped message never comes back');
      t.equal(await broker.pending(queue), 0);
      t.equal(await broker.inflight(queue), 0);
    },
  ],
  [
    'nack with a delay holds the message back until the delay has passed',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelope = makeEnvelope(queue);
      await broker.publish([envelope]);
      const first = await collectOne(t, consumer);
      const nackedAt = Date.now();
      await broker.nack(first, { requeue: true, delayMs: 600 });
      const [again] = await fetchDelayed(t, broker, consumer, queue, 1, nackedAt + 600);
      t.equal(again!.envelope.id, envelope.id);
      await broker.ack([again!]);
    },
  ],
  [
    'nack with a replacement envelope delivers the replacement',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      await broker.publish([makeEnvelope(queue)]);
      const first = await collectOne(t, consumer);
      const replacement: Envelope = {
        ...first.envelope,
        attempt: 1,
        args: { n: 2 },
        meta: { ...first.envelope.meta, 'contract.retried': true },
      };
      await broker.nack(first, { requeue: true, envelope: replacement });
      const second = await collectOne(t, consumer);
      t.same(second.envelope, replacement, 'the replacement, not the original');
      t.equal(second.envelope.attempt, 1);
      await broker.ack([second]);
    },
  ],
  [
    'a dead letter keeps its reason, meta, queue and envelope, and leaves the queue',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelope = makeEnvelope(queue, { attempt: 3 });
      await broker.publish([envelope]);
      const delivery = await collectOne(t, consumer);
      const before = Date.now();
      await broker.deadLetter(delivery, 'unrecoverable', { error: { type: 'Unrecoverable', message: 'bad input' }, attempt: 3 });
      const after = Date.now();
      t.equal(await broker.pending(queue), 0, 'not waiting any more');
      t.equal(await broker.inflight(queue), 0, 'not leased any more');
      const letter = await broker.getDeadLetter(queue, envelope.id);
      if (letter === null) throw new Error('the dead letter was not found');
      t.equal(letter.id, envelope.id);
      t.equal(letter.queue, queue);
      t.equal(letter.reason, 'unrecoverable');
      t.same(letter.meta, { error: { type: 'Unrecoverable', message: 'bad input' }, attempt: 3 });
      t.same(letter.envelope, envelope);
      t.ok(letter.deadAt >= before - CLOCK_SLACK_MS && letter.deadAt <= after + CLOCK_SLACK_MS, 'deadAt is when it happened');
      t.equal(await broker.getDeadLetter(queue, uuidv7()), null, 'an unknown id is null');
      t.same(await fetchWithin(consumer, 10, QUIET_MS), [], 'a dead letter is not delivered');
    },
  ],
  [
    'dead letters are listed oldest first with a total, and purged by id or all at once',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const [e0, e1, e2] = await deadLetterSome(broker, consumer, queue, 3);
      const all = await broker.listDeadLetters(queue);
      t.equal(all.total, 3);
      t.same(ids(all.entries), ids([e0!, e1!, e2!]), 'oldest first');
      const firstPage = await broker.listDeadLetters(queue, { limit: 2 });
      t.same(ids(firstPage.entries), ids([e0!, e1!]));
      t.equal(firstPage.total, 3, 'the total counts every entry, not the page');
      const secondPage = await broker.listDeadLetters(queue, { limit: 2, offset: 2 });
      t.same(ids(secondPage.entries), ids([e2!]));
      t.equal(secondPage.total, 3);
      t.equal(await broker.purgeDeadLetters(queue, { ids: [e0!.id] }), 1, 'purge by id');
      t.same(ids((await broker.listDeadLetters(queue)).entries), ids([e1!, e2!]));
      t.equal(await broker.purgeDeadLetters(queue), 2, 'purge all');
      t.same(await broker.listDeadLetters(queue), { entries: [], total: 0 });
    },
  ],
  [
    'replay with dryRun reports the dead letters it would take and moves nothing',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const [e0, e1, e2] = await deadLetterSome(broker, consumer, queue, 3);
      t.same(ids(await broker.replayDeadLetters(queue, { dryRun: true })), ids([e0!, e1!, e2!]), 'all, oldest first');
      t.same(ids(await broker.replayDeadLetters(queue, { dryRun: true, limit: 1 })), ids([e0!]), 'limit takes the oldest');
      t.same(ids(await broker.replayDeadLetters(queue, { dryRun: true, ids: [e2!.id] })), ids([e2!]), 'ids select');
      t.equal((await broker.listDeadLetters(queue)).total, 3, 'still dead letters');
      t.equal(await broker.pending(queue), 0, 'nothing was published');
      t.same(await fetchWithin(consumer, 10, QUIET_MS), []);
    },
  ],
  [
    'replayed dead letters return to their queue with attempt 0, not before the delay asked for',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const [e0, e1, e2] = await deadLetterSome(broker, consumer, queue, 3);
      t.same(ids(await broker.replayDeadLetters(queue, { ids: [e0!.id] })), ids([e0!]));
      t.equal((await broker.listDeadLetters(queue)).total, 2, 'a replayed letter leaves the dead-letter queue');
      const replayed = await collectOne(t, consumer);
      t.equal(replayed.envelope.id, e0!.id);
      t.equal(replayed.envelope.attempt, 0, 'attempt reset');
      t.equal(
        generationOf(replayed.envelope.meta),
        generationOf(e0!.meta) + 1,
        "a new generation, so its states pass the old run's final one",
      );
      t.same(replayed.envelope.args, e0!.args);
      await broker.ack([replayed]);

      const replayedAt = Date.now();
      t.same(ids(await broker.replayDeadLetters(queue, { delayMs: 600 })), ids([e1!, e2!]));
      const later = await fetchDelayed(t, broker, consumer, queue, 2, replayedAt + 600, async () => {
        t.equal((await broker.listDeadLetters(queue)).total, 0);
      });
      t.same(ids(later).sort(), ids([e1!, e2!]).sort());
      t.same(
        later.map((d) => d.envelope.attempt),
        [0, 0],
        'attempt reset',
      );
      await broker.ack(later);
    },
  ],
  [
    'an extended lease is not redelivered when its original lease runs out',
    async (t, broker, defer) => {
      // The extend must reach the broker before the original lease runs out. A stall of the machine can delay it past that;
      // this is seen from the clock (the extend started after the lease's end), and the case runs again, on a fresh queue,
      // with a longer lease. An extend that started in time and still lets the message go is a failure.
      await retryOnStall(t, SHORT_LEASE_MS, async (leaseMs, lastTry) => {
        const queue = uniqueName('queue');
        const holder = await openConsumer(broker, defer, { queues: [queue] });
        const other = await openConsumer(broker, defer, { queues: [queue] });
        await broker.publish([makeEnvelope(queue, { visibilityTimeoutMs: leaseMs })]);
        const delivery = await collectOne(t, holder);
        const leaseEnd = delivery.leaseExpiresAt; // extendLeases may move the delivery's own field
        await sleep(leaseMs / 2);
        const extendStarted = Date.now();
        await broker.extendLeases([delivery], 60_000);
        if (extendStarted >= leaseEnd - CLOCK_SLACK_MS && !lastTry) return STALLED;
        // Past the original lease: without the extend, the other consumer would get the message.
        const quiet = Math.max(0, leaseEnd + QUIET_MS - Date.now());
        t.same(await fetchWithin(other, 10, quiet), [], 'nobody gets it past the original lease');
        t.equal(await broker.inflight(queue), 1, 'still leased');
        await broker.ack([delivery]);
        t.equal(await broker.inflight(queue), 0, 'the extended delivery can still be acked');
      });
    },
  ],
  [
    'a delivery not acked within its visibility timeout is delivered again with redeliveries 1, and its stale receipt is ignored',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelope = makeEnvelope(queue, { visibilityTimeoutMs: SHORT_LEASE_MS });
      await broker.publish([envelope]);
      const first = await collectOne(t, consumer);
      t.equal(first.redeliveries, 0);
      const second = await collectOne(t, consumer);
      t.equal(second.envelope.id, envelope.id, 'the same message');
      t.equal(second.redeliveries, 1);
      await broker.ack([second]);
      await t.resolves(broker.ack([first]), 'acking a stale receipt does not throw');
      await t.resolves(broker.nack(first, { requeue: true }), 'nacking a stale receipt does not throw');
      await t.resolves(broker.ack([second]), 'acking twice does not throw');
      t.same(await fetchWithin(consumer, 10, QUIET_MS), [], 'nothing comes back');
    },
  ],
  [
    'a message with notBefore is not delivered before it',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const notBefore = Date.now() + 600;
      const envelope = makeEnvelope(queue, { notBefore });
      await broker.publish([envelope]);
      const [delivery] = await fetchDelayed(t, broker, consumer, queue, 1, notBefore);
      t.equal(delivery!.envelope.id, envelope.id);
      await broker.ack([delivery!]);
    },
  ],
  [
    'priority 9 is delivered before priority 1 published earlier',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const low = makeEnvelope(queue, { priority: 1 });
      const high = makeEnvelope(queue, { priority: 9 });
      await broker.publish([low]);
      await broker.publish([high]);
      const deliveries = await collect(consumer, 2);
      t.same(ids(deliveries), ids([high, low]));
      await broker.ack(deliveries);
    },
  ],
  [
    'one publish of many envelopes delivers every one, oldest first',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const envelopes = Array.from({ length: 50 }, (_, i) => makeEnvelope(queue, { args: { i } }));
      await broker.publish(envelopes);
      t.equal(await broker.pending(queue), 50);
      const deliveries = await collect(consumer, 50);
      t.same(ids(deliveries), ids(envelopes), 'each once, in publish order');
      await broker.ack(deliveries);
      t.equal(await broker.pending(queue), 0);
      t.equal(await broker.inflight(queue), 0);
    },
  ],
  [
    'a broadcast reaches every subscriber exactly once, and no consumer of a plain queue',
    async (t, broker, defer) => {
      const channel = uniqueName('channel');
      const first = await openConsumer(broker, defer, { queues: [uniqueName('queue')], broadcasts: [channel] });
      const second = await openConsumer(broker, defer, { queues: [uniqueName('queue')], broadcasts: [channel] });
      // A queue that merely shares the channel's name is not subscribed.
      const plain = await openConsumer(broker, defer, { queues: [channel] });
      const envelope = makeEnvelope(broadcastAddress(channel));
      await broker.publish([envelope]);
      const copies = await Promise.all([collectOne(t, first), collectOne(t, second)]);
      for (const copy of copies) {
        t.equal(copy.envelope.id, envelope.id);
        t.equal(copy.queue, broadcastAddress(channel), 'the delivery names the broadcast address');
      }
      await broker.ack(copies);
      const extra = await Promise.all([first, second, plain].map((consumer) => fetchWithin(consumer, 10, QUIET_MS)));
      t.same(extra, [[], [], []], 'no second copy, and nothing for the plain queue');
    },
  ],
  [
    'a broadcast copy that is not acked is delivered again to the same subscriber only',
    async (t, broker, defer) => {
      const channel = uniqueName('channel');
      const first = await openConsumer(broker, defer, { queues: [], broadcasts: [channel] });
      const second = await openConsumer(broker, defer, { queues: [], broadcasts: [channel] });
      const envelope = makeEnvelope(broadcastAddress(channel), { visibilityTimeoutMs: SHORT_LEASE_MS });
      await broker.publish([envelope]);
      const [, copy2] = await Promise.all([collectOne(t, first), collectOne(t, second)]);
      await broker.ack([copy2]);
      const again = await collectOne(t, first);
      t.equal(again.envelope.id, envelope.id, 'the unacked copy comes back to its subscriber');
      t.equal(again.redeliveries, 1);
      t.same(await fetchWithin(second, 10, QUIET_MS), [], 'the subscriber that acked gets nothing more');
      await broker.ack([again]);
    },
  ],
  [
    'fetch returns [] when its signal aborts while it waits',
    async (t, broker, defer) => {
      const consumer = await openConsumer(broker, defer, { queues: [uniqueName('queue')] });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 150);
      t.same(await consumer.fetch(10, controller.signal), []);
      t.same(await consumer.fetch(10, AbortSignal.abort()), [], 'an already aborted signal returns at once');
    },
  ],
  [
    'a message published while a consumer waits wakes it',
    async (t, broker, defer) => {
      const { queue, consumer } = await openQueue(broker, defer);
      const waiting = fetchWithin(consumer, 10, DELIVERY_CEILING_MS);
      await sleep(150);
      const envelope = makeEnvelope(queue);
      await broker.publish([envelope]);
      const deliveries = await waiting;
      t.same(ids(deliveries), ids([envelope]), 'the waiting fetch returns the new message');
      await broker.ack(deliveries);
    },
  ],
];

/**
 * The Broker contract: publish and fetch, acks and nacks, leases, delays, priorities, dead
 * letters, replay and broadcast fan-out. Uses unique queue names, so runs may share a server.
 */
export async function brokerContract(t: Test, factory: ContractFactory<Broker>): Promise<void> {
  await runContract(t, 'Broker contract', factory, cases);
}
