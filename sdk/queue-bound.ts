import type { Broker, DeadLetter } from './contracts/broker.js';
import type { TaskStatus } from './contracts/result-backend.js';
import { type Envelope, isBroadcastAddress } from './envelope.js';
import { UnsupportedCapabilityError, UsageError } from './errors.js';
import { generationOf } from './state-order.js';

/**
 * The headers a broker with the `boundedQueues` capability enforces at publish: the most tasks the
 * queue may hold waiting, and what happens to a task that does not fit. The routing plugin sets
 * them from a queue's `max_length` / `overflow`; tasks enqueued by name may set them directly.
 */
export const QUEUE_BOUND_HEADERS = {
  maxLength: 'stem-max-length',
  overflow: 'stem-overflow',
} as const;

/** What a bounded queue does with a publish that does not fit: refuse it, or drop its oldest waiting task. */
export type OverflowPolicy = 'reject' | 'drop-oldest';

/** The overflow policies, as written in routing.yaml and the `stem-overflow` header. */
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['reject', 'drop-oldest'];

/** A queue's bound: at most `maxLength` tasks waiting (ready, delayed, or waiting for a key's slot). */
export interface QueueBound {
  /** The most tasks the queue holds waiting; leased (running) tasks do not count. */
  maxLength: number;
  /** What a publish that does not fit does. */
  overflow: OverflowPolicy;
}

/** The dead-letter reason of a task that `drop-oldest` dropped to make room. */
export const QUEUE_FULL_DROPPED_REASON = 'queue-full-dropped';

/** The largest `maxLength` accepted (a 32-bit integer, so every store can compare it). */
const MAX_MAX_LENGTH = 2_147_483_647;

/** Checks a bound as configured (routing file, code, headers): a whole `maxLength` of 1 or more and a known policy. */
export function checkQueueBound(maxLength: unknown, overflow: unknown, where: string): QueueBound {
  if (typeof maxLength !== 'number' || !Number.isInteger(maxLength) || maxLength < 1 || maxLength > MAX_MAX_LENGTH) {
    throw new UsageError(`${where}: maxLength ${JSON.stringify(maxLength)} must be a whole number from 1 to ${MAX_MAX_LENGTH}`);
  }
  const policy = overflow ?? 'reject';
  if (!OVERFLOW_POLICIES.includes(policy as OverflowPolicy)) {
    throw new UsageError(`${where}: overflow ${JSON.stringify(overflow)} is not a policy; use ${OVERFLOW_POLICIES.join(' or ')}`);
  }
  return { maxLength, overflow: policy as OverflowPolicy };
}

/** The bound an envelope carries, or undefined; a bad header is a usage error (checked at enqueue, before publish). */
export function queueBoundOf(envelope: Envelope): QueueBound | undefined {
  const raw = envelope.headers[QUEUE_BOUND_HEADERS.maxLength];
  if (raw === undefined || raw === '') return undefined;
  const maxLength = /^\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
  return checkQueueBound(maxLength, envelope.headers[QUEUE_BOUND_HEADERS.overflow], `task "${envelope.name}" to queue "${envelope.queue}"`);
}

/** True when an envelope of a publish carries a queue bound (its `stem-max-length` header): one lookup each. */
export function hasBoundedEnvelope(envelopes: readonly Envelope[]): boolean {
  for (const envelope of envelopes) if (envelope.headers[QUEUE_BOUND_HEADERS.maxLength] !== undefined) return true;
  return false;
}

/** Writes a queue's bound onto an envelope published to it; headers the caller set win. */
export function stampQueueBound(envelope: Envelope, bound: QueueBound): void {
  envelope.headers[QUEUE_BOUND_HEADERS.maxLength] ??= String(bound.maxLength);
  envelope.headers[QUEUE_BOUND_HEADERS.overflow] ??= bound.overflow;
}

/** The name a broker is shown by in errors: its class name, `Broker` stripped. */
function brokerName(broker: Broker): string {
  const name = broker.constructor?.name ?? 'configured';
  return name.endsWith('Broker') && name.length > 'Broker'.length ? name.slice(0, -'Broker'.length) : name;
}

/** Refuses at configuration a bounded queue on a broker that cannot enforce it (never published unbounded). */
export function assertBoundedQueuesSupported(broker: Broker, what: string): void {
  if (broker.boundedQueues !== true) throw new UnsupportedCapabilityError('boundedQueues', brokerName(broker), what);
}

/**
 * Checks a bounded envelope before it is published: a valid bound, a plain queue, and a broker
 * that enforces it. Returns true when the envelope is bounded. Unbounded envelopes cost one lookup.
 */
export function assertQueueBoundSupported(broker: Broker, envelope: Envelope): boolean {
  if (envelope.headers[QUEUE_BOUND_HEADERS.maxLength] === undefined) return false;
  if (isBroadcastAddress(envelope.queue)) {
    throw new UsageError(
      `task "${envelope.name}" to ${envelope.queue}: a broadcast channel has no bound; remove the ${QUEUE_BOUND_HEADERS.maxLength} header`,
    );
  }
  queueBoundOf(envelope);
  assertBoundedQueuesSupported(broker, `task "${envelope.name}" to bounded queue "${envelope.queue}"`);
  return true;
}

/** The meta of a dropped task's dead letter: the bound that dropped it. */
export function droppedMeta(bound: QueueBound): Record<string, unknown> {
  return { maxLength: bound.maxLength, overflow: bound.overflow };
}

/**
 * The `cancelled` state of a task a bounded queue dropped to make room (overflow `drop-oldest`),
 * at the attempt and generation its envelope carries, so that it passes its `queued` state.
 */
export function droppedStatus(letter: DeadLetter & { envelope: Envelope }, now: number): TaskStatus {
  const envelope = letter.envelope;
  const maxLength = letter.meta.maxLength;
  const status: TaskStatus = {
    id: envelope.id,
    state: 'cancelled',
    name: envelope.name,
    queue: envelope.queue,
    attempt: envelope.attempt,
    updatedAt: now,
    error: {
      type: 'QueueFullError',
      code: 'queue-full',
      message:
        `dropped: queue "${envelope.queue}" was full ` +
        `(maxLength ${typeof maxLength === 'number' ? maxLength : '?'}, overflow drop-oldest) ` +
        `and a newer task took its place; it is in the queue's dead letters (reason ${QUEUE_FULL_DROPPED_REASON})`,
    },
  };
  const generation = generationOf(envelope.meta);
  if (generation > 0) status.generation = generation;
  return status;
}
