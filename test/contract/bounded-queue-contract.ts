import type { Test } from 'tap';
import { CONCURRENCY_HEADERS } from '../../sdk/concurrency-key.js';
import type { Broker, BrokerConsumer, DeadLetter, Delivery, PublishReport } from '../../sdk/contracts/broker.js';
import type { Envelope } from '../../sdk/envelope.js';
import { QueueFullError } from '../../sdk/errors.js';
import { type OverflowPolicy, QUEUE_BOUND_HEADERS, QUEUE_FULL_DROPPED_REASON } from '../../sdk/queue-bound.js';
import { type CaseBody, type ContractFactory, type Defer, fetchWithin, makeEnvelope, runContract, uniqueName } from './support.js';

/** How long a fetch that must come back empty is given. */
const QUIET_MS = 400;

function bounded(queue: string, maxLength: number, overflow: OverflowPolicy, overrides: Partial<Envelope> = {}): Envelope {
  return makeEnvelope(queue, {
    ...overrides,
    headers: { [QUEUE_BOUND_HEADERS.maxLength]: String(maxLength), [QUEUE_BOUND_HEADERS.overflow]: overflow, ...overrides.headers },
  });
}

async function open(broker: Broker, defer: Defer, queue: string): Promise<BrokerConsumer> {
  const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
  defer(() => consumer.close());
  return consumer;
}

/** The ceiling of a wait for deliveries that must come; only a broken broker reaches it, a slow machine does not. */
const DELIVERY_CEILING_MS = 30_000;

/**
 * Fetches the `count` deliveries expected (waiting up to DELIVERY_CEILING_MS), then for QUIET_MS more, so that any beyond
 * `count` show. (It used to fetch until one fetch came back empty within QUIET_MS, which a stall of the machine between
 * two batches ended early.)
 */
async function drain(consumer: BrokerConsumer, count: number): Promise<Delivery[]> {
  const deadline = Date.now() + DELIVERY_CEILING_MS;
  const out: Delivery[] = [];
  while (out.length < count && Date.now() < deadline) out.push(...(await fetchWithin(consumer, count - out.length, deadline - Date.now())));
  if (out.length < count) return out;
  return [...out, ...(await fetchWithin(consumer, 100, QUIET_MS))];
}

/** The publish's rejection, or undefined when it went in. */
async function refusal(publishing: Promise<unknown>): Promise<unknown> {
  try {
    await publishing;
    return undefined;
  } catch (error) {
    return error;
  }
}

function lettersOf(report: void | PublishReport): DeadLetter[] {
  return report ? report.dropped : [];
}

function droppedIds(report: void | PublishReport): string[] {
  return lettersOf(report).map((letter) => letter.id);
}

const cases: ReadonlyArray<readonly [string, CaseBody<Broker>]> = [
  [
    'a full reject queue refuses exactly the overflow, a batch that does not fit goes in not at all, and leased tasks do not count',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const first = [0, 1, 2].map(() => bounded(queue, 3, 'reject'));
      await broker.publish(first);
      const extra = bounded(queue, 3, 'reject');
      const error = await refusal(broker.publish([extra]));
      t.ok(error instanceof QueueFullError, 'QueueFullError');
      t.same((error as QueueFullError).taskIds, [extra.id], 'it names the refused task');
      t.equal((error as QueueFullError).queue, queue);
      t.equal((error as QueueFullError).maxLength, 3);
      t.notOk((error as Error).message.includes('\n'), 'a one-line message');
      t.equal(await broker.pending(queue), 3, 'the queue still holds 3');
      const consumer = await open(broker, defer, queue);
      const [leased] = await fetchWithin(consumer, 1, DELIVERY_CEILING_MS);
      t.equal(leased?.envelope.id, first[0]!.id);
      const batch = [bounded(queue, 3, 'reject'), bounded(queue, 3, 'reject')];
      t.ok((await refusal(broker.publish(batch))) instanceof QueueFullError, 'two do not fit where one does: neither goes in');
      t.equal(await broker.pending(queue), 2);
      await broker.publish([batch[0]!]);
      t.equal(await broker.pending(queue), 3, 'a leased task does not count: one more fits');
      await broker.ack([leased!]);
      const rest = await drain(consumer, 3);
      t.same(
        rest.map((delivery) => delivery.envelope.id),
        [first[1]!.id, first[2]!.id, batch[0]!.id],
        'exactly what was accepted is delivered',
      );
    },
  ],
  [
    'concurrent producers never overfill a reject queue: exactly maxLength publishes succeed',
    async (t, broker) => {
      const queue = uniqueName('queue');
      const envelopes = Array.from({ length: 40 }, () => bounded(queue, 10, 'reject'));
      const outcomes = await Promise.allSettled(envelopes.map((envelope) => broker.publish([envelope])));
      const accepted = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
      const refused = outcomes.filter((outcome) => outcome.status === 'rejected' && outcome.reason instanceof QueueFullError).length;
      t.equal(accepted, 10, 'ten accepted');
      t.equal(refused, 30, 'thirty refused with QueueFullError');
      t.equal(await broker.pending(queue), 10, 'the queue holds exactly ten');
    },
  ],
  [
    'drop-oldest dead-letters exactly the oldest waiting task, whatever its priority, and reports it',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const low = bounded(queue, 3, 'drop-oldest', { priority: 1 });
      const high = bounded(queue, 3, 'drop-oldest', { priority: 9 });
      const middle = bounded(queue, 3, 'drop-oldest', { priority: 5 });
      await broker.publish([low]);
      await broker.publish([high]);
      await broker.publish([middle]);
      const newest = bounded(queue, 3, 'drop-oldest');
      const report = await broker.publish([newest]);
      t.same(droppedIds(report), [low.id], 'the oldest (lowest priority, too) was dropped');
      t.equal(lettersOf(report)[0]?.reason, QUEUE_FULL_DROPPED_REASON);
      t.equal(lettersOf(report)[0]?.envelope?.id, low.id, 'with its envelope');
      const letter = await broker.getDeadLetter(queue, low.id);
      t.equal(letter?.reason, QUEUE_FULL_DROPPED_REASON, 'kept as a dead letter with its reason');
      t.match(letter?.meta, { maxLength: 3, overflow: 'drop-oldest' });
      t.equal(await broker.pending(queue), 3);
      const two = [bounded(queue, 3, 'drop-oldest'), bounded(queue, 3, 'drop-oldest')];
      t.same(droppedIds(await broker.publish(two)), [high.id, middle.id], 'a batch of two drops the next two oldest, oldest first');
      const consumer = await open(broker, defer, queue);
      const left = await drain(consumer, 3);
      t.same(left.map((delivery) => delivery.envelope.id).sort(), [newest.id, two[0]!.id, two[1]!.id].sort(), 'the three newest are left');
      t.equal((await broker.listDeadLetters(queue)).total, 3, 'three dead letters');
    },
  ],
  [
    'drop-oldest never drops a leased task, and refuses when what waits cannot be dropped (delayed)',
    async (t, broker, defer) => {
      const queue = uniqueName('queue');
      const later = Date.now() + 3_600_000;
      const delayed = [bounded(queue, 2, 'drop-oldest', { notBefore: later }), bounded(queue, 2, 'drop-oldest', { notBefore: later })];
      await broker.publish(delayed);
      const extra = bounded(queue, 2, 'drop-oldest');
      const error = await refusal(broker.publish([extra]));
      t.ok(error instanceof QueueFullError, 'refused: both waiting tasks are delayed');
      t.equal(await broker.pending(queue), 2);
      const other = uniqueName('queue');
      const running = bounded(other, 1, 'drop-oldest');
      await broker.publish([running]);
      const consumer = await open(broker, defer, other);
      const [leased] = await fetchWithin(consumer, 1, DELIVERY_CEILING_MS);
      t.equal(leased?.envelope.id, running.id);
      const next = bounded(other, 1, 'drop-oldest');
      t.same(droppedIds(await broker.publish([next])), [], 'the leased task is not waiting: nothing dropped');
      await broker.ack([leased!]);
      t.equal(await broker.pending(other), 1);

      // A batch whose first task (delayed) takes the last droppable one's place, and whose second finds
      // nothing left to drop: the second is refused, and whatever was dropped on the way is reported.
      const third = uniqueName('queue');
      const waitingLong = bounded(third, 2, 'drop-oldest', { notBefore: later });
      const ready = bounded(third, 2, 'drop-oldest');
      await broker.publish([waitingLong]);
      await broker.publish([ready]);
      const batch = [bounded(third, 2, 'drop-oldest', { notBefore: later }), bounded(third, 2, 'drop-oldest')];
      const partial = await refusal(broker.publish(batch));
      t.ok(partial instanceof QueueFullError, 'refused: nothing left to drop for the last one');
      t.ok((partial as QueueFullError).taskIds.includes(batch[1]!.id), 'the last task is among the refused');
      const letters = (await broker.listDeadLetters(third)).entries.map((letter) => letter.id);
      t.same(
        ((partial as QueueFullError).dropped as DeadLetter[]).map((letter) => letter.id),
        letters,
        'every task dropped on the way is reported with the refusal',
      );
      t.equal(await broker.pending(third), 2, 'never over the bound');
    },
  ],
  [
    'drop-oldest of a keyed task gives its key’s slot back to the key’s next task',
    async (t, broker, defer) => {
      if (broker.concurrency === undefined) {
        t.pass('the broker has no concurrency capability: nothing to check');
        return;
      }
      const queue = uniqueName('queue');
      const keyed = (overrides: Partial<Envelope> = {}) =>
        bounded(queue, 3, 'drop-oldest', { ...overrides, headers: { [CONCURRENCY_HEADERS.key]: 'k', [CONCURRENCY_HEADERS.limit]: '1' } });
      const k1 = keyed();
      const k2 = keyed();
      const plain = bounded(queue, 3, 'drop-oldest');
      await broker.publish([k1]);
      await broker.publish([k2]);
      await broker.publish([plain]);
      const newest = bounded(queue, 3, 'drop-oldest');
      t.same(droppedIds(await broker.publish([newest])), [k1.id], 'the oldest task, k1, which held the key’s slot, was dropped');
      const consumer = await open(broker, defer, queue);
      const left = await drain(consumer, 3);
      t.same(left.map((delivery) => delivery.envelope.id).sort(), [k2.id, plain.id, newest.id].sort(), 'k2 got the slot');
      await broker.ack(left);
    },
  ],
];

/**
 * The `boundedQueues` capability of a broker (docs/flow-control.md): `stem-max-length` /
 * `stem-overflow` checked atomically with the publish. A reject queue refuses exactly the
 * overflow, concurrent producers included; drop-oldest dead-letters exactly the oldest waiting
 * tasks and reports them; leased tasks never count or go.
 */
export async function boundedQueueContract(t: Test, factory: ContractFactory<Broker>): Promise<void> {
  await runContract(t, 'broker bounded queues capability', factory, cases);
}
