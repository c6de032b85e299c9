import type { Envelope } from '../envelope.js';
import type { ConcurrencyControl } from './concurrency-control.js';
import type { ResultBackend, SetOptions, TaskStatus } from './result-backend.js';

/** One message handed to a consumer, with the lease that keeps others from taking it. */
export interface Delivery {
  /** The decoded task envelope. */
  envelope: Envelope;
  /** The queue (or `broadcast://channel` address) it was read from. */
  queue: string;
  /** A broker-specific token that identifies this delivery for ack, nack and lease calls. */
  receipt: string;
  /** Epoch ms when the lease runs out unless renewed. */
  leaseExpiresAt: number;
  /** How many times this message was delivered before (0 on the first delivery). */
  redeliveries: number;
}

/** What a consumer reads: queues, broadcast channels, and who it is. */
export interface ConsumerOptions {
  /** Queues to read, e.g. `['default', 'reports']`. */
  queues: readonly string[];
  /** Broadcast channels to subscribe to (names without `broadcast://`). */
  broadcasts?: readonly string[];
  /** A stable id of this consumer (the worker id): the broadcast subscriber identity. */
  consumerId: string;
}

/** A registered consumer: reads batches of deliveries. */
export interface BrokerConsumer {
  /**
   * Waits until at least one delivery is ready (or `signal` aborts), then returns up to `max` of
   * them, each leased to this consumer for its envelope's visibility timeout. Returns [] when
   * aborted. Higher priority first; within a priority, oldest first.
   */
  fetch(max: number, signal: AbortSignal): Promise<Delivery[]>;
  /** Releases what the consumer holds open (a blocking connection, a subscription). */
  close(): Promise<void>;
}

/** Options of nack: put back (optionally later) or drop. */
export interface NackOptions {
  /** true: back to the queue; false: dropped. */
  requeue: boolean;
  /** With requeue, not deliverable before this many ms from now. */
  delayMs?: number;
  /** With requeue, the envelope to put back instead of the delivered one (e.g. attempt + 1). */
  envelope?: Envelope;
}

/** A message set aside with the reason it could not be processed. */
export interface DeadLetter {
  /** The task id (or a generated id for an undecodable message). */
  id: string;
  /** The queue it came from. */
  queue: string;
  /** Why: `unregistered-task`, `max-retries-exhausted`, `unrecoverable`, `malformed-envelope`, … */
  reason: string;
  /** Extra detail: the error, the attempt, the raw payload of a malformed message. */
  meta: Record<string, unknown>;
  /** Epoch ms when it was dead-lettered. */
  deadAt: number;
  /** The envelope, when it could be decoded. */
  envelope?: Envelope;
}

/** Which dead letters a replay takes, and how. */
export interface ReplayOptions {
  /** At most this many (oldest first). */
  limit?: number;
  /** Only report what would be replayed. */
  dryRun?: boolean;
  /** Publish them to run no earlier than this many ms from now. */
  delayMs?: number;
  /** Only these ids. */
  ids?: readonly string[];
}

/** A page of dead letters. */
export interface DeadLetterPage {
  /** The entries, oldest first. */
  entries: DeadLetter[];
  /** How many the queue has in all. */
  total: number;
}

/** The `queued` states of a transactional publish, and the backend they belong to (see `Broker.publishInTransaction`). */
export interface TransactionStates {
  /** The instance's result backend. */
  backend: ResultBackend;
  /** One `queued` state per envelope that tracks its result. */
  statuses: readonly TaskStatus[];
  /** The write's TTL and quietness, as for `ResultBackend.set`. */
  options: SetOptions;
}

/**
 * What a publish reports beyond success: the tasks a bounded queue with overflow `drop-oldest`
 * dropped to make room (each already kept as a dead letter with reason `queue-full-dropped`).
 * The producer records their `cancelled` state.
 */
export interface PublishReport {
  /** The dead letters of the dropped tasks, oldest first. */
  dropped: DeadLetter[];
}

/**
 * Carries envelopes from producers to workers. At-least-once: a delivery not acked before its
 * lease runs out is delivered again. Implementations: sdk/memory, plugins/redis, plugins/postgres.
 */
export interface Broker {
  /**
   * Publishes envelopes (one round trip where the transport allows); honours notBefore and priority.
   * With the `boundedQueues` capability it honours the `stem-max-length` / `stem-overflow` headers
   * atomically with the write: a publish that does not fit a `reject` queue throws QueueFullError
   * and writes nothing to that queue; a `drop-oldest` queue dead-letters its oldest waiting tasks
   * and reports them.
   */
  publish(envelopes: readonly Envelope[]): Promise<void | PublishReport>;
  /** Registers a consumer for queues and broadcast channels. */
  consumer(options: ConsumerOptions): Promise<BrokerConsumer>;
  /** Acknowledges finished deliveries: they are gone for good. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /** Gives a delivery back: requeued (maybe delayed, maybe with a new envelope) or dropped. */
  nack(delivery: Delivery, options: NackOptions): Promise<void>;
  /**
   * Optional: writes `statuses` to `backend` and acks `deliveries` in one round trip, the states
   * first (a failure leaves both undone). Returns false when it cannot for this backend (another
   * server or connection): the worker then calls `backend.set` and `ack` itself. The broker
   * asks the backend for its writer with `backend.stateWriter?.(key)` and the key of its own
   * connection, never by its class: a third-party pair offers the same through the contract.
   */
  ackWithStates?(backend: ResultBackend, statuses: readonly TaskStatus[], ttlMs: number, deliveries: readonly Delivery[]): Promise<boolean>;
  /**
   * Optional: publishes `envelopes` and writes their `queued` `statuses` to `backend` in one
   * atomic step (one statement or transaction): when it fails, neither is written. Returns false
   * when it cannot for this backend (another server or connection): the producer then publishes
   * and writes the states itself, in that order.
   */
  publishWithStates?(
    backend: ResultBackend,
    statuses: readonly TaskStatus[],
    options: SetOptions,
    envelopes: readonly Envelope[],
  ): Promise<boolean>;
  /**
   * Optional: publishes `envelopes` inside the caller's open `transaction` (`enqueue(…, {
   * transaction })`), so that workers see them if and only if it commits, and a rollback leaves
   * nothing. The kernel hands `transaction` over untouched: what it may be is the plugin's to
   * define and check (throw InvalidTransactionError for one it cannot write in). `states`, when
   * given, are the `queued` states: write them in the same transaction when `states.backend`
   * offers a writer for it (`stateWriter`), otherwise leave them unwritten (never outside the
   * transaction: a rollback must leave no state); the worker writes the later ones. Brokers
   * without it make such an enqueue fail with TransactionNotSupportedError.
   */
  publishInTransaction?(transaction: unknown, envelopes: readonly Envelope[], states?: TransactionStates): Promise<void>;
  /**
   * Optional capability: per-key concurrency (the `stem-concurrency-key` header) enforced in the
   * broker's own atomic paths. Absent: keyed tasks are refused at enqueue and worker start.
   */
  readonly concurrency?: ConcurrencyControl;
  /**
   * Optional capability: bounded queues (the `stem-max-length` / `stem-overflow` headers, see
   * `publish`), checked in the same atomic step as the write, so concurrent producers cannot
   * overfill a queue. Absent: a bounded queue is refused at configuration and enqueue
   * (UnsupportedCapabilityError). Replays of dead letters and retries are not bounded.
   */
  readonly boundedQueues?: boolean;
  /** Extends the leases of deliveries still being worked on to `leaseMs` from now. */
  extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void>;
  /** Removes a delivery from its queue and keeps it as a dead letter (atomically where possible). */
  deadLetter(delivery: Delivery, reason: string, meta?: Record<string, unknown>): Promise<void>;
  /** Lists dead letters of a queue, oldest first. */
  listDeadLetters(queue: string, options?: { limit?: number; offset?: number }): Promise<DeadLetterPage>;
  /** One dead letter by id, or null. */
  getDeadLetter(queue: string, id: string): Promise<DeadLetter | null>;
  /** Publishes dead letters back to their queue (attempt reset to 0); returns what was (or would be) replayed. */
  replayDeadLetters(queue: string, options?: ReplayOptions): Promise<DeadLetter[]>;
  /** Deletes a queue's dead letters; returns how many. */
  purgeDeadLetters(queue: string, options?: { ids?: readonly string[] }): Promise<number>;
  /** Messages waiting in a queue (ready and delayed, not leased). */
  pending(queue: string): Promise<number>;
  /** Messages of a queue leased to consumers right now. */
  inflight(queue: string): Promise<number>;
  /** Deletes a queue's waiting messages; returns how many. */
  purge(queue: string): Promise<number>;
  /** The queues this broker knows of (published to or consumed from). */
  listQueues(): Promise<string[]>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
