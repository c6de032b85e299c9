import type {
  Broker,
  BrokerConsumer,
  ConsumerOptions,
  DeadLetter,
  DeadLetterPage,
  Delivery,
  NackOptions,
  PublishReport,
  ReplayOptions,
} from '../../sdk/contracts/broker.js';
import type { ResultBackend, SetOptions, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { concurrencyKeyOf } from '../../sdk/concurrency-key.js';
import { broadcastAddress, broadcastChannel, encodeEnvelope, type Envelope } from '../../sdk/envelope.js';
import { ConfigError, QueueFullError } from '../../sdk/errors.js';
import { droppedMeta, hasBoundedEnvelope, QUEUE_FULL_DROPPED_REASON, type QueueBound, queueBoundOf } from '../../sdk/queue-bound.js';
import { startedOver } from '../../sdk/state-order.js';
import { clampPriority, insertMessages, parseReceipt, visibilityOf } from './message-rows.js';
import { SqliteConcurrency } from './sqlite-concurrency.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteConsumer } from './sqlite-consumer.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

/** A dead letter row as read back. */
interface DeadLetterRow {
  seq: number;
  id: string;
  queue: string;
  reason: string;
  meta: string;
  envelope: string | null;
  dead_at: number;
}

/** How long a broadcast subscription may go unrefreshed before its copies are dropped. */
const STALE_SUBSCRIPTION_MS = 60 * 60_000;

const DEAD_LETTER_COLUMNS = 'seq, id, queue, reason, meta, envelope, dead_at';

/** Deletes a delivered row by its receipt; returns its concurrency key (null for an unkeyed row, nothing for a stale receipt). */
const DELETE_DELIVERED = 'delete from stem_messages where id = ? and lease = ? returning concurrency_key';

/**
 * The SQLite broker: one row per message (per subscriber for a broadcast), claimed in
 * `BEGIN IMMEDIATE` transactions and leased with `locked_until`; every write is one short
 * transaction (a batch of publishes or acks included), and wakes idle consumers of this process at
 * once and of other processes through the connection's change monitor.
 */
export class SqliteBroker extends SqliteService implements Broker {
  private readonly consumers = new Set<SqliteConsumer>();
  private readonly knownQueues = new Set<string>();
  private readonly stopPrune: () => void;
  /** Per-key concurrency, enforced by the claim (see SqliteConcurrency). */
  readonly concurrency: SqliteConcurrency;

  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite broker');
    this.concurrency = new SqliteConcurrency(connection, this.namespace);
    this.stopPrune = connection.every(60_000, () => this.pruneSubscriptions());
  }

  /** Inserts every envelope in one transaction: a publish that fails leaves nothing behind. */
  async publish(envelopes: readonly Envelope[]): Promise<void | PublishReport> {
    this.assertOpen();
    if (envelopes.length === 0) return;
    if (hasBoundedEnvelope(envelopes)) return this.publishBounded(envelopes);
    const fresh = this.connection.immediate(() => insertMessages(this.connection, this.namespace, envelopes, this.knownQueues));
    this.published(fresh);
  }

  /**
   * Publishes and writes the `queued` states in one transaction when `backend` writes through this
   * broker's connection (it answers `stateWriter` for its key): an enqueue that fails leaves neither
   * a message nor a state.
   */
  async publishWithStates(
    backend: ResultBackend,
    statuses: readonly TaskStatus[],
    options: SetOptions,
    envelopes: readonly Envelope[],
  ): Promise<boolean> {
    const writer = backend.stateWriter?.(this.connection.stateWrites);
    // A bounded publish may be refused or drop tasks: its states follow its verdict (the producer writes them).
    if (writer === undefined || hasBoundedEnvelope(envelopes)) return false;
    this.assertOpen();
    if (envelopes.length === 0) return true;
    const ttl = writer.ttlFor(options);
    const { fresh, applied } = this.connection.immediate(() => ({
      applied: writer.writeStates(statuses, ttl),
      fresh: insertMessages(this.connection, this.namespace, envelopes, this.knownQueues),
    }));
    this.published(fresh);
    writer.announce(applied, options);
    return true;
  }

  /** Bounded queues (`max_length`): checked inside the publish's transaction (SQLite has one writer at a time). */
  readonly boundedQueues = true;

  /**
   * A publish to bounded queues in one `BEGIN IMMEDIATE` transaction: the count, the rows, and for
   * a `drop-oldest` queue the deletion of its oldest rows a worker may take now (beyond the bound)
   * into dead letters. A `reject` queue that cannot take the whole publish, or a `drop-oldest` one with too
   * little it may drop, rolls the whole publish back with QueueFullError.
   */
  private publishBounded(envelopes: readonly Envelope[]): PublishReport {
    const bounded = new Map<string, { bound: QueueBound; count: number }>();
    for (const envelope of envelopes) {
      const bound = broadcastChannel(envelope.queue) === undefined ? queueBoundOf(envelope) : undefined;
      if (bound !== undefined) bounded.set(envelope.queue, { bound, count: (bounded.get(envelope.queue)?.count ?? 0) + 1 });
    }
    const connection = this.connection;
    const refuse = (queue: string, bound: QueueBound): never => {
      throw new QueueFullError(
        queue,
        bound.maxLength,
        envelopes.map((envelope) => envelope.id),
      );
    };
    const { fresh, dropped } = connection.immediate(() => {
      const now = Date.now();
      const excess = new Map<string, number>();
      const length = connection.prepare(
        `select count(*) from stem_messages where namespace = ? and queue = ? and subscriber = '' and (locked_until is null or ` +
          `locked_until <= ?)`,
      );
      for (const [queue, { bound, count }] of bounded) {
        const over = (length.pluck().get(this.namespace, queue, now) as number) + count - bound.maxLength;
        if (over <= 0) continue;
        if (bound.overflow === 'reject') refuse(queue, bound);
        excess.set(queue, over);
      }
      const fresh = insertMessages(connection, this.namespace, envelopes, this.knownQueues);
      const dropped: DeadLetter[] = [];
      // As if the tasks came in one by one, each dropping the oldest due task before it: the
      // publish's last task to a queue is never the one dropped (a queue of delayed tasks refuses).
      const lastOf = new Map(envelopes.map((envelope) => [envelope.queue, envelope.id]));
      for (const [queue, over] of excess) {
        const bound = bounded.get(queue)!.bound;
        const meta = droppedMeta(bound);
        const rows: Array<{ id: number; task_id: string; payload: string }> = [];
        for (let n = 0; n < over; n++) {
          const id = this.oldestRunnable(queue, lastOf.get(queue)!, now);
          // What waits beyond the bound is delayed, leased or waiting for its key's slot: nothing more may go, so nothing comes in.
          if (id === undefined) refuse(queue, bound);
          rows.push(
            connection.prepare('delete from stem_messages where id = ? returning id, task_id, payload').get(id) as (typeof rows)[0],
          );
        }
        const keep = connection.prepare(
          'insert or replace into stem_dead_letters (namespace, queue, id, reason, meta, envelope, dead_at) values (?, ?, ?, ?, ?, ?, ?)',
        );
        for (const row of rows) {
          keep.run(this.namespace, queue, row.task_id, QUEUE_FULL_DROPPED_REASON, JSON.stringify(meta), row.payload, now);
          dropped.push({
            id: row.task_id,
            queue,
            reason: QUEUE_FULL_DROPPED_REASON,
            meta: { ...meta },
            deadAt: now,
            envelope: JSON.parse(row.payload) as Envelope,
          });
        }
      }
      return { fresh, dropped };
    });
    this.published(fresh);
    return { dropped };
  }

  /**
   * The oldest row of a queue a worker may take now (call it in the publish's transaction), not of
   * task `lastId`: unkeyed, due and not leased, or keyed and among the first `limit` rows of its key
   * (a keyed task waiting for its slot stays, as on memory and Redis). Dropping a keyed row frees
   * its slot, so the key's next row may be the next one found.
   */
  private oldestRunnable(queue: string, lastId: string, now: number): number | undefined {
    const connection = this.connection;
    let oldest = connection
      .prepare(
        `select id from stem_messages where namespace = ? and queue = ? and subscriber = '' and concurrency_key is null
          and (locked_until is null or locked_until <= ?) and not_before <= ? and task_id <> ? order by id limit 1`,
      )
      .pluck()
      .get(this.namespace, queue, now, now, lastId) as number | undefined;
    const taskIdOf = connection.prepare('select task_id from stem_messages where id = ?').pluck();
    for (const { id } of this.concurrency.candidates(queue, now)) {
      if ((oldest === undefined || id < oldest) && taskIdOf.get(id) !== lastId) oldest = id;
    }
    return oldest;
  }

  private published(fresh: readonly string[]): void {
    for (const queue of fresh) this.knownQueues.add(queue);
    this.connection.monitor.announce();
  }

  /** Registers a consumer; its broadcast subscriptions are in place before this resolves. */
  async consumer(options: ConsumerOptions): Promise<BrokerConsumer> {
    this.assertOpen();
    if (typeof options.consumerId !== 'string' || options.consumerId === '') {
      throw new ConfigError('sqlite broker consumer: consumerId must be a non-empty string (the worker id)');
    }
    const queues = new Set<string>();
    const broadcasts = new Set<string>((options.broadcasts ?? []).map(broadcastAddress));
    for (const queue of options.queues) {
      // A broadcast address among the queues means a subscription, not a queue of that name.
      if (broadcastChannel(queue) === undefined) queues.add(queue);
      else broadcasts.add(queue);
    }
    const now = Date.now();
    this.connection.immediate(() => {
      const remember = this.connection.prepare('insert into stem_queues (namespace, queue) values (?, ?) on conflict do nothing');
      for (const queue of [...queues, ...broadcasts]) if (!this.knownQueues.has(queue)) remember.run(this.namespace, queue);
      const subscribe = this.connection.prepare(
        `insert into stem_subscriptions (namespace, queue, consumer_id, seen_at) values (?, ?, ?, ?)
        on conflict (namespace, queue, consumer_id) do update set seen_at = excluded.seen_at`,
      );
      for (const queue of broadcasts) subscribe.run(this.namespace, queue, options.consumerId, now);
    });
    for (const queue of [...queues, ...broadcasts]) this.knownQueues.add(queue);
    const consumer = new SqliteConsumer(
      this.connection,
      this.namespace,
      this.concurrency,
      queues,
      broadcasts,
      options.consumerId,
      (closed) => this.unsubscribe(closed),
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Writes the states and acks in one transaction when `backend` writes through this broker's
   * connection (it answers `stateWriter` for its key): the worker's flush is one commit.
   */
  async ackWithStates(
    backend: ResultBackend,
    statuses: readonly TaskStatus[],
    ttlMs: number,
    deliveries: readonly Delivery[],
  ): Promise<boolean> {
    const writer = backend.stateWriter?.(this.connection.stateWrites);
    if (writer === undefined) return false;
    this.assertOpen();
    const { applied, freed } = this.connection.immediate(() => {
      const written = writer.writeStates(statuses, ttlMs);
      return { applied: written, freed: this.deleteDelivered(deliveries) };
    });
    writer.announce(applied);
    if (freed) this.connection.monitor.announce();
    return true;
  }

  /** Deletes acked rows in one transaction; stale receipts (the row was claimed again since) are ignored. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    this.assertOpen();
    if (deliveries.length === 0) return;
    if (this.connection.immediate(() => this.deleteDelivered(deliveries))) this.connection.monitor.announce();
  }

  /** Deletes the delivered rows; true when one of them was keyed (its key has a free slot now: wake this process's consumers). */
  private deleteDelivered(deliveries: readonly Delivery[]): boolean {
    const remove = this.connection.prepare(DELETE_DELIVERED).pluck();
    let freed = false;
    for (const delivery of deliveries) {
      const receipt = parseReceipt(delivery.receipt);
      if (receipt !== undefined && (remove.get(receipt.id, receipt.lease) ?? null) !== null) freed = true;
    }
    return freed;
  }

  /**
   * Requeues at its old place (or later with delayMs), or, with a replacement envelope, as a new
   * message behind those waiting; or drops it. A stale receipt does nothing.
   */
  async nack(delivery: Delivery, options: NackOptions): Promise<void> {
    this.assertOpen();
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) return;
    const connection = this.connection;
    if (!options.requeue) {
      if ((connection.prepare(DELETE_DELIVERED).pluck().get(receipt.id, receipt.lease) ?? null) !== null) connection.monitor.announce();
      return;
    }
    const now = Date.now();
    const delayMs = options.delayMs !== undefined && options.delayMs > 0 ? options.delayMs : undefined;
    const { envelope } = options;
    if (envelope === undefined) {
      const original = delivery.envelope.notBefore;
      const notBefore = delayMs !== undefined ? now + delayMs : typeof original === 'number' && Number.isFinite(original) ? original : now;
      connection
        .prepare('update stem_messages set locked_until = null, locked_by = null, not_before = ? where id = ? and lease = ?')
        .run(notBefore, receipt.id, receipt.lease);
    } else {
      // A replacement is a new message (a retry): a new row, so that it queues behind the waiting ones.
      const notBefore =
        delayMs !== undefined
          ? now + delayMs
          : envelope.notBefore !== undefined && Number.isFinite(envelope.notBefore)
            ? envelope.notBefore
            : now;
      if (concurrencyKeyOf(envelope) !== undefined) {
        // A keyed retry keeps its row, so it keeps its place in its key's line (docs/flow-control.md);
        // a new lease makes the old receipt stale, as a new row would.
        connection
          .prepare(
            `update stem_messages set payload = ?, task_id = ?, priority = ?, visibility_ms = ?, not_before = ?,
              locked_until = null, locked_by = null, deliveries = 0, lease = (random() & 9007199254740991)
            where id = ? and lease = ?`,
          )
          .run(
            encodeEnvelope(envelope),
            envelope.id,
            clampPriority(envelope.priority),
            visibilityOf(envelope),
            notBefore,
            receipt.id,
            receipt.lease,
          );
        connection.monitor.announce();
        return;
      }
      connection.immediate(() => {
        const gone = connection
          .prepare('delete from stem_messages where id = ? and lease = ? returning queue, subscriber')
          .get(receipt.id, receipt.lease) as { queue: string; subscriber: string } | undefined;
        if (gone === undefined) return;
        connection
          .prepare(
            `insert into stem_messages (namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before, created_at)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            this.namespace,
            gone.queue,
            gone.subscriber,
            envelope.id,
            clampPriority(envelope.priority),
            encodeEnvelope(envelope),
            visibilityOf(envelope),
            notBefore,
            now,
          );
      });
    }
    connection.monitor.announce();
  }

  /** Moves every lease still held to `leaseMs` from now, in one transaction; updates `leaseExpiresAt`. */
  async extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void> {
    this.assertOpen();
    if (deliveries.length === 0) return;
    const connection = this.connection;
    connection.immediate(() => {
      const lockedUntil = Date.now() + Math.max(0, Math.round(leaseMs));
      const extend = connection.prepare(
        'update stem_messages set locked_until = ? where id = ? and lease = ? and locked_until is not null',
      );
      for (const delivery of deliveries) {
        const receipt = parseReceipt(delivery.receipt);
        if (receipt === undefined) continue;
        if (extend.run(lockedUntil, receipt.id, receipt.lease).changes > 0) delivery.leaseExpiresAt = lockedUntil;
      }
    });
  }

  /** Deletes the row and stores the dead letter in one transaction; a stale receipt does nothing. */
  async deadLetter(delivery: Delivery, reason: string, meta: Record<string, unknown> = {}): Promise<void> {
    this.assertOpen();
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) return;
    const connection = this.connection;
    const freed = connection.immediate(() => {
      const gone = connection
        .prepare('delete from stem_messages where id = ? and lease = ? returning payload, concurrency_key')
        .get(receipt.id, receipt.lease) as { payload: string; concurrency_key: string | null } | undefined;
      if (gone === undefined) return false;
      // Replacing an older letter of the same id gives it a new seq: it is now the youngest.
      connection
        .prepare(
          'insert or replace into stem_dead_letters (namespace, queue, id, reason, meta, envelope, dead_at) values (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(this.namespace, delivery.queue, delivery.envelope.id, reason, JSON.stringify(meta), gone.payload, Date.now());
      return gone.concurrency_key !== null;
    });
    if (freed) connection.monitor.announce();
  }

  /** A page of a queue's dead letters, oldest first. */
  async listDeadLetters(queue: string, options: { limit?: number; offset?: number } = {}): Promise<DeadLetterPage> {
    this.assertOpen();
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = options.limit === undefined ? -1 : Math.max(0, Math.floor(options.limit));
    const rows = this.connection
      .prepare(`select ${DEAD_LETTER_COLUMNS} from stem_dead_letters where namespace = ? and queue = ? order by seq limit ? offset ?`)
      .all(this.namespace, queue, limit, offset) as DeadLetterRow[];
    const total = this.connection
      .prepare('select count(*) from stem_dead_letters where namespace = ? and queue = ?')
      .pluck()
      .get(this.namespace, queue) as number;
    return { entries: rows.map(toDeadLetter), total };
  }

  /** One dead letter, or null. */
  async getDeadLetter(queue: string, id: string): Promise<DeadLetter | null> {
    this.assertOpen();
    const row = this.connection
      .prepare(`select ${DEAD_LETTER_COLUMNS} from stem_dead_letters where namespace = ? and queue = ? and id = ?`)
      .get(this.namespace, queue, id) as DeadLetterRow | undefined;
    return row === undefined ? null : toDeadLetter(row);
  }

  /**
   * Publishes dead letters back to their queue with attempt 0 of a new generation, oldest first,
   * in one transaction (delete the letters, insert the messages); letters with no envelope stay.
   */
  async replayDeadLetters(queue: string, options: ReplayOptions = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    const connection = this.connection;
    const choose = (): DeadLetterRow[] => {
      let rows = connection
        .prepare(
          `select ${DEAD_LETTER_COLUMNS} from stem_dead_letters where namespace = ? and queue = ? and envelope is not null order by seq`,
        )
        .all(this.namespace, queue) as DeadLetterRow[];
      if (options.ids !== undefined) {
        const wanted = new Set(options.ids);
        rows = rows.filter((row) => wanted.has(row.id));
      }
      return options.limit === undefined ? rows : rows.slice(0, Math.max(0, Math.floor(options.limit)));
    };
    if (options.dryRun === true) return choose().map(toDeadLetter);
    const { entries, fresh } = connection.immediate(() => {
      const rows = choose();
      const remove = connection.prepare('delete from stem_dead_letters where seq = ?');
      for (const row of rows) remove.run(row.seq);
      const entries = rows.map(toDeadLetter);
      const now = Date.now();
      const envelopes = entries.map((letter) => {
        const envelope: Envelope = startedOver(letter.envelope!, letter.queue);
        delete envelope.notBefore;
        if (options.delayMs !== undefined && options.delayMs > 0) envelope.notBefore = now + options.delayMs;
        return envelope;
      });
      return { entries, fresh: insertMessages(connection, this.namespace, envelopes, this.knownQueues) };
    });
    this.published(fresh);
    return entries;
  }

  /** Deletes dead letters (all, or only `ids`); returns how many. */
  async purgeDeadLetters(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.assertOpen();
    const { ids } = options;
    if (ids === undefined) {
      return this.connection.prepare('delete from stem_dead_letters where namespace = ? and queue = ?').run(this.namespace, queue).changes;
    }
    const remove = this.connection.prepare('delete from stem_dead_letters where namespace = ? and queue = ? and id = ?');
    return this.connection.immediate(() => ids.reduce((count, id) => count + remove.run(this.namespace, queue, id).changes, 0));
  }

  /** Waiting rows (ready, delayed, or whose lease ran out); summed over subscribers for a broadcast address. */
  async pending(queue: string): Promise<number> {
    this.assertOpen();
    return this.connection
      .prepare('select count(*) from stem_messages where namespace = ? and queue = ? and (locked_until is null or locked_until <= ?)')
      .pluck()
      .get(this.namespace, queue, Date.now()) as number;
  }

  /** Rows leased right now. */
  async inflight(queue: string): Promise<number> {
    this.assertOpen();
    return this.connection
      .prepare('select count(*) from stem_messages where namespace = ? and queue = ? and locked_until > ?')
      .pluck()
      .get(this.namespace, queue, Date.now()) as number;
  }

  /** Deletes the waiting rows, expired leases included; leased ones stay. */
  async purge(queue: string): Promise<number> {
    this.assertOpen();
    return this.connection
      .prepare('delete from stem_messages where namespace = ? and queue = ? and (locked_until is null or locked_until <= ?)')
      .run(this.namespace, queue, Date.now()).changes;
  }

  /** Plain queues published to or consumed from, then broadcast addresses, each sorted. */
  async listQueues(): Promise<string[]> {
    this.assertOpen();
    const names = this.connection.prepare('select queue from stem_queues where namespace = ?').pluck().all(this.namespace) as string[];
    const plain = names.filter((name) => broadcastChannel(name) === undefined).sort();
    const broadcasts = names.filter((name) => broadcastChannel(name) !== undefined).sort();
    return [...plain, ...broadcasts];
  }

  /** Closes its consumers (waiting fetches return []) and stops its timers. */
  protected override async dispose(): Promise<void> {
    for (const consumer of this.consumers) consumer.shutdown();
    this.consumers.clear();
    this.stopPrune();
  }

  private async unsubscribe(consumer: SqliteConsumer): Promise<void> {
    this.consumers.delete(consumer);
    if (consumer.broadcasts.size === 0 || this.isClosed) return;
    // The subscription ends with its consumer, and so do the copies waiting for it.
    const connection = this.connection;
    connection.immediate(() => {
      for (const queue of consumer.broadcasts) {
        connection
          .prepare('delete from stem_subscriptions where namespace = ? and consumer_id = ? and queue = ?')
          .run(this.namespace, consumer.consumerId, queue);
        connection
          .prepare('delete from stem_messages where namespace = ? and subscriber = ? and queue = ?')
          .run(this.namespace, consumer.consumerId, queue);
      }
    });
  }

  /** Drops subscriptions whose consumer stopped refreshing them (it died), with their copies. */
  private pruneSubscriptions(): void {
    const connection = this.connection;
    connection.immediate(() => {
      const stale = connection
        .prepare('delete from stem_subscriptions where namespace = ? and seen_at < ? returning queue, consumer_id')
        .all(this.namespace, Date.now() - STALE_SUBSCRIPTION_MS) as Array<{ queue: string; consumer_id: string }>;
      for (const row of stale)
        connection
          .prepare('delete from stem_messages where namespace = ? and subscriber = ? and queue = ?')
          .run(this.namespace, row.consumer_id, row.queue);
    });
  }
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  const letter: DeadLetter = {
    id: row.id,
    queue: row.queue,
    reason: row.reason,
    meta: JSON.parse(row.meta) as Record<string, unknown>,
    deadAt: row.dead_at,
  };
  if (row.envelope !== null) {
    try {
      letter.envelope = JSON.parse(row.envelope) as Envelope;
    } catch {
      // A payload that was never JSON stays without an envelope (it cannot be replayed).
    }
  }
  return letter;
}
