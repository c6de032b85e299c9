import { sql } from 'kysely';
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
  TransactionStates,
} from '../../sdk/contracts/broker.js';
import type { ResultBackend, SetOptions, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { broadcastAddress, broadcastChannel, encodeEnvelope, type Envelope } from '../../sdk/envelope.js';
import { concurrencyKeyOf } from '../../sdk/concurrency-key.js';
import { ConfigError, QueueFullError } from '../../sdk/errors.js';
import { droppedMeta, hasBoundedEnvelope, QUEUE_FULL_DROPPED_REASON, type QueueBound, queueBoundOf } from '../../sdk/queue-bound.js';
import { callerTransaction } from './caller-transaction.js';
import {
  clampPriority,
  DEFAULT_VISIBILITY_MS,
  epochMs,
  insertMessages,
  messageInsert,
  numberArray,
  parseReceipt,
  type PublishExtras,
} from './message-rows.js';
import type { CompiledStatement, PostgresConnection } from './postgres-connection.js';
import { PostgresConcurrency } from './postgres-concurrency.js';
import { PostgresConsumer } from './postgres-consumer.js';
import { PostgresService } from './postgres-service.js';
import { STATE_WRITE_SLOTS, type PostgresStateWriter, type StateWriteValues } from './postgres-state-writer.js';
import { startedOver } from '../../sdk/state-order.js';

/** A dead letter row as read back. */
interface DeadLetterRow {
  id: string;
  queue: string;
  reason: string;
  meta: Record<string, unknown>;
  envelope: Envelope | null;
  dead_at_ms: number;
}

/** Placeholders of the settle statement (compiled once) for the acked rows' ids and leases. */
const ACKED_IDS = Object.freeze({ slot: 'ackedIds' });
const ACKED_LEASES = Object.freeze({ slot: 'ackedLeases' });
/** The state write's placeholders, by the value each stands for. */
const SLOT_NAMES = new Map<unknown, keyof StateWriteValues>(
  (Object.keys(STATE_WRITE_SLOTS) as Array<keyof StateWriteValues>).map((name) => [STATE_WRITE_SLOTS[name], name]),
);

/** How long a broadcast subscription may go unrefreshed before its copies are dropped. */
const STALE_SUBSCRIPTION = sql`interval '1 hour'`;

/**
 * The Postgres broker: one row per message (per subscriber for a broadcast), claimed with
 * `FOR UPDATE SKIP LOCKED` and leased with `locked_until`; LISTEN/NOTIFY wakes idle consumers.
 * Every call is one statement (publish, ack, extendLeases: one for the whole batch).
 */
export class PostgresBroker extends PostgresService implements Broker {
  private readonly consumers = new Set<PostgresConsumer>();
  private readonly knownQueues = new Set<string>();
  private readonly channel: string;
  /** Per-key concurrency, enforced by the claim (see PostgresConcurrency). */
  readonly concurrency: PostgresConcurrency;
  private listening: Promise<() => Promise<void>> | undefined;
  private stopReconnect: (() => void) | undefined;
  private readonly stopPrune: () => void;
  private readonly settles = new WeakMap<PostgresStateWriter, CompiledStatement<unknown>>();
  private ackStatement: CompiledStatement<unknown> | undefined;

  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres broker');
    this.channel = connection.channel('broker');
    this.concurrency = new PostgresConcurrency(connection, this.channel);
    this.stopPrune = connection.every(60_000, () => this.pruneSubscriptions());
  }

  private get schema(): string {
    return this.connection.options.schema;
  }

  /**
   * Inserts every envelope, records new queue names and NOTIFYs their queues, in one statement:
   * a publish that fails leaves nothing behind.
   */
  async publish(envelopes: readonly Envelope[]): Promise<void | PublishReport> {
    this.assertOpen();
    if (envelopes.length === 0) return;
    if (hasBoundedEnvelope(envelopes)) return this.publishBounded(envelopes);
    await this.insert(envelopes, {});
  }

  /** Bounded queues (`max_length`): checked in the publish's transaction, under a lock per queue. */
  readonly boundedQueues = true;

  /**
   * A publish to bounded queues, in one transaction: a transaction-scoped advisory lock per bounded
   * queue (taken in name order, so two producers never deadlock) serialises its producers, so the
   * count read after it sees every earlier publish; then the rows go in, and a `drop-oldest` queue
   * deletes its oldest due waiting rows beyond the bound into dead letters. A `reject` queue that
   * cannot take the whole publish, or a `drop-oldest` one with too little it may drop, rolls the
   * whole publish back with QueueFullError. Workers claiming meanwhile only shorten the queue.
   */
  private async publishBounded(envelopes: readonly Envelope[]): Promise<PublishReport> {
    const bounded = new Map<string, { bound: QueueBound; count: number }>();
    for (const envelope of envelopes) {
      const bound = broadcastChannel(envelope.queue) === undefined ? queueBoundOf(envelope) : undefined;
      if (bound !== undefined) bounded.set(envelope.queue, { bound, count: (bounded.get(envelope.queue)?.count ?? 0) + 1 });
    }
    const queues = [...bounded.keys()].sort();
    const newQueues = [...new Set(envelopes.map((envelope) => envelope.queue))].filter((queue) => !this.knownQueues.has(queue));
    const messages = this.table('stem_messages');
    const waiting = sql`namespace = ${this.namespace} and queue = any(${queues}::text[]) and subscriber = ''
      and (locked_until is null or locked_until <= now())`;
    const dropped = await this.connection.run(() =>
      this.connection.db.transaction().execute(async (trx) => {
        // `queues` is sorted, and unnest keeps its order.
        await sql`select pg_advisory_xact_lock(hashtextextended(${this.namespace}::text || ${'\n'}::text || q, 0))
          from unnest(${queues}::text[]) q`.execute(trx);
        const { rows: lengths } = await sql<{ queue: string; length: string }>`select queue, count(*) as length from ${messages}
          where ${waiting} group by queue`.execute(trx);
        const lengthOf = new Map(lengths.map((row) => [row.queue, Number(row.length)]));
        const excess = new Map<string, number>();
        for (const queue of queues) {
          const { bound, count } = bounded.get(queue)!;
          const over = (lengthOf.get(queue) ?? 0) + count - bound.maxLength;
          if (over <= 0) continue;
          if (bound.overflow === 'reject') {
            throw new QueueFullError(
              queue,
              bound.maxLength,
              envelopes.map((envelope) => envelope.id),
            );
          }
          excess.set(queue, over);
        }
        await messageInsert(this.schema, this.namespace, this.channel, envelopes, { newQueues }).execute(trx);
        const letters: DeadLetter[] = [];
        // As if the tasks came in one by one, each dropping the oldest due task before it: the
        // publish's last task to a queue is never the one dropped (a queue of delayed tasks refuses).
        const lastOf = new Map(envelopes.map((envelope) => [envelope.queue, envelope.id]));
        for (const [queue, over] of excess) {
          const bound = bounded.get(queue)!.bound;
          const meta = droppedMeta(bound);
          const { rows } = await sql<{ task_id: string; payload: string; dead_at_ms: number }>`with gone as (
              delete from ${messages} m where m.id in (
                select id from ${messages} where namespace = ${this.namespace} and queue = ${queue} and subscriber = ''
                  and (locked_until is null or locked_until <= now()) and not_before <= now() and task_id <> ${lastOf.get(queue)!}
                order by id limit ${over} for update skip locked
              )
              returning m.id, m.task_id, m.payload
            ), kept as (
              insert into ${this.table('stem_dead_letters')} as d (namespace, queue, id, reason, meta, envelope, dead_at)
              select ${this.namespace}, ${queue}, gone.task_id, ${QUEUE_FULL_DROPPED_REASON}, ${JSON.stringify(meta)}::json,
                gone.payload::json, now()
              from gone
              on conflict (namespace, queue, id) do update
                set reason = excluded.reason, meta = excluded.meta, envelope = excluded.envelope, dead_at = excluded.dead_at, seq = default
            )
            select task_id, payload, ${epochMs(sql`now()`)} as dead_at_ms from gone order by id`.execute(trx);
          if (rows.length < over) {
            // What waits beyond the bound is delayed or leased: nothing more may go, so nothing comes in.
            throw new QueueFullError(
              queue,
              bound.maxLength,
              envelopes.map((envelope) => envelope.id),
            );
          }
          for (const row of rows) {
            letters.push({
              id: row.task_id,
              queue,
              reason: QUEUE_FULL_DROPPED_REASON,
              meta: { ...meta },
              deadAt: row.dead_at_ms,
              envelope: JSON.parse(row.payload) as Envelope,
            });
          }
        }
        return letters;
      }),
    );
    for (const queue of newQueues) this.knownQueues.add(queue);
    return { dropped };
  }

  /**
   * Publishes and writes the `queued` states in one statement when `backend` offers a state writer
   * for this broker's connection (the `postgres()` plugin's does): an enqueue is one round trip,
   * and one that fails leaves neither a message nor a state. False for any other backend.
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
    await this.insert(envelopes, statesOf(writer, statuses, options));
    return true;
  }

  /**
   * Publishes in the caller's open transaction (a Kysely transaction or a pg client after BEGIN),
   * in one statement: the rows, the queue names, the `queued` states when `states.backend` is this
   * plugin's (same connection key), and the NOTIFY, which Postgres delivers only at commit. Nothing
   * is retried (a dropped connection ends the caller's transaction) and nothing is remembered in
   * this process until then: a rollback leaves no trace, here or in the database.
   */
  async publishInTransaction(transaction: unknown, envelopes: readonly Envelope[], states?: TransactionStates): Promise<void> {
    this.assertOpen();
    const run = callerTransaction(transaction, 'postgres broker', this.schema);
    if (envelopes.length === 0) return;
    const writer =
      states === undefined || states.statuses.length === 0 ? undefined : states.backend.stateWriter?.(this.connection.stateWrites);
    const newQueues = [...new Set(envelopes.map((envelope) => envelope.queue))].filter((queue) => !this.knownQueues.has(queue));
    const statement = messageInsert(this.schema, this.namespace, this.channel, envelopes, {
      newQueues,
      ...(writer === undefined ? {} : statesOf(writer, states!.statuses, states!.options)),
    });
    await run(statement.compile(this.connection.db));
  }

  private async insert(envelopes: readonly Envelope[], states: Pick<PublishExtras, 'states' | 'queued'>): Promise<void> {
    const newQueues = [...new Set(envelopes.map((envelope) => envelope.queue))].filter((queue) => !this.knownQueues.has(queue));
    // A named prepared statement: a producer's publishes share a few texts (with or without states,
    // new queues, broadcasts), and parsing and planning them cost as much as a single insert.
    const statement = messageInsert(this.schema, this.namespace, this.channel, envelopes, { newQueues, ...states });
    await this.connection.run(() => this.connection.prepared(statement));
    for (const queue of newQueues) this.knownQueues.add(queue);
  }

  /** Registers a consumer; its broadcast subscriptions are in place before this resolves. */
  async consumer(options: ConsumerOptions): Promise<BrokerConsumer> {
    this.assertOpen();
    if (typeof options.consumerId !== 'string' || options.consumerId === '') {
      throw new ConfigError('postgres broker consumer: consumerId must be a non-empty string (the worker id)');
    }
    const queues = new Set<string>();
    const broadcasts = new Set<string>((options.broadcasts ?? []).map(broadcastAddress));
    for (const queue of options.queues) {
      // A broadcast address among the queues means a subscription, not a queue of that name.
      if (broadcastChannel(queue) === undefined) queues.add(queue);
      else broadcasts.add(queue);
    }
    await this.ensureListening();
    await this.remember([...queues, ...broadcasts]);
    if (broadcasts.size > 0) {
      await this.connection.run(() =>
        this.connection.db
          .insertInto('stem_subscriptions')
          .values(
            [...broadcasts].map((queue) => ({
              namespace: this.namespace,
              queue,
              consumer_id: options.consumerId,
              seen_at: sql<string>`now()`,
            })),
          )
          .onConflict((oc) => oc.columns(['namespace', 'queue', 'consumer_id']).doUpdateSet({ seen_at: sql<string>`now()` }))
          .execute(),
      );
    }
    const consumer = new PostgresConsumer(this.connection, queues, broadcasts, options.consumerId, (closed) => this.unsubscribe(closed));
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Writes the states and acks in one statement when `backend` offers a state writer for this
   * broker's connection (the `postgres()` plugin's does): the worker's flush is one round trip.
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
    const { ids, leases } = receiptArrays(deliveries);
    const written = writer.upsertValues(statuses, { ttlMs });
    const statement = this.settleStatement(writer);
    const values = statement.parameters.map((slot) => {
      if (slot === ACKED_IDS) return ids;
      if (slot === ACKED_LEASES) return leases;
      const name = SLOT_NAMES.get(slot);
      return name === undefined ? slot : written[name];
    });
    await this.connection.run(() => this.connection.runCompiled(statement, values));
    return true;
  }

  /**
   * The settle of `ackWithStates` (the acks and the state write), compiled once per writer: a
   * worker's flush binds its values and builds no query. Data-modifying CTEs all run, whether or
   * not the final select reads them; the NOTIFYs run inside a count, so that the answer is one
   * row, not one per state.
   */
  private settleStatement(writer: PostgresStateWriter): CompiledStatement<unknown> {
    let statement = this.settles.get(writer);
    if (statement === undefined) {
      const { written, notify } = writer.upsertSql(STATE_WRITE_SLOTS, false);
      statement = this.connection.compile(sql`with acked as (
          delete from ${this.table('stem_messages')} m using unnest(${ACKED_IDS}::bigint[], ${ACKED_LEASES}::int[]) as r(id, lease)
          where m.id = r.id and m.lease = r.lease
          returning ${this.keyedWake}
        ),
        written as (${written})
        select count(*) from (${notify}) n`);
      this.settles.set(writer, statement);
    }
    return statement;
  }

  /** Deletes acked rows in one statement; stale receipts (the row was claimed again since) are ignored. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    this.assertOpen();
    const { ids, leases, count } = receiptArrays(deliveries);
    if (count === 0) return;
    // Compiled once, a named prepared statement; the wakes run in the CTE, the answer is one row.
    this.ackStatement ??= this.connection.compile(sql`with acked as (
        delete from ${this.table('stem_messages')} m using unnest(${ACKED_IDS}::bigint[], ${ACKED_LEASES}::int[]) as r(id, lease)
        where m.id = r.id and m.lease = r.lease returning ${this.keyedWake}
      )
      select count(*) from acked`);
    const statement = this.ackStatement;
    const values = statement.parameters.map((slot) => (slot === ACKED_IDS ? ids : slot === ACKED_LEASES ? leases : slot));
    await this.connection.run(() => this.connection.runCompiled(statement, values));
  }

  /**
   * Requeues at its old place (or later with delayMs), or, with a replacement envelope, as a new
   * message behind those waiting; or drops it. One statement; a stale receipt does nothing.
   */
  async nack(delivery: Delivery, options: NackOptions): Promise<void> {
    this.assertOpen();
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) return;
    const messages = this.table('stem_messages');
    const mine = sql`m.id = ${receipt.id} and m.lease = ${receipt.lease}`;
    if (!options.requeue) {
      await this.connection.run(() => sql`delete from ${messages} m where ${mine} returning ${this.keyedWake}`.execute(this.connection.db));
      return;
    }
    const delayMs = options.delayMs !== undefined && options.delayMs > 0 ? options.delayMs : undefined;
    const { envelope } = options;
    if (envelope === undefined) {
      const original = delivery.envelope.notBefore;
      const notBefore =
        delayMs !== undefined
          ? sql`now() + ${delayMs} * interval '1 millisecond'`
          : typeof original === 'number'
            ? sql`to_timestamp(${original}::float8 / 1000.0)`
            : sql`now()`;
      await this.connection.run(() =>
        sql`with requeued as (
            update ${messages} m set locked_until = null, locked_by = null, not_before = ${notBefore}
            where ${mine} returning m.queue
          )
          select pg_notify(${this.channel}, queue) from requeued`.execute(this.connection.db),
      );
      return;
    }
    // A replacement is a new message (a retry): a new row, so that it queues behind the waiting ones.
    const notBefore =
      delayMs !== undefined
        ? sql`now() + ${delayMs} * interval '1 millisecond'`
        : envelope.notBefore !== undefined
          ? sql`to_timestamp(${envelope.notBefore}::float8 / 1000.0)`
          : sql`now()`;
    const visibility = envelope.visibilityTimeoutMs > 0 ? Math.round(envelope.visibilityTimeoutMs) : DEFAULT_VISIBILITY_MS;
    if (concurrencyKeyOf(envelope) !== undefined) {
      // A keyed retry keeps its row, so it keeps its place in its key's line (docs/flow-control.md);
      // a new lease number makes the old receipt stale, as a new row would.
      await this.connection.run(() =>
        sql`with requeued as (
            update ${messages} m set payload = ${encodeEnvelope(envelope)}, task_id = ${envelope.id},
              priority = ${clampPriority(envelope.priority)}, visibility_ms = ${visibility}, not_before = ${notBefore},
              locked_until = null, locked_by = null, deliveries = 0, lease = m.lease + 1, queued_state = null
            where ${mine} returning m.queue
          )
          select pg_notify(${this.channel}, queue) from requeued`.execute(this.connection.db),
      );
      return;
    }
    await this.connection.run(() =>
      sql`with gone as (delete from ${messages} m where ${mine} returning m.namespace, m.queue, m.subscriber),
        inserted as (
          insert into ${messages} (namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before)
          select namespace, queue, subscriber, ${envelope.id}, ${clampPriority(envelope.priority)}, ${encodeEnvelope(envelope)},
            ${visibility}, ${notBefore} from gone
          returning queue
        )
        select pg_notify(${this.channel}, queue) from inserted`.execute(this.connection.db),
    );
  }

  /** Moves every lease still held to `leaseMs` from now, in one statement; updates `leaseExpiresAt`. */
  async extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void> {
    this.assertOpen();
    const { ids, leases, byReceipt } = receiptsOf(deliveries);
    if (ids.length === 0) return;
    const { rows } = await this.connection.run(() =>
      sql<{ id: string; lease: number; lease_expires_at: number }>`update ${this.table('stem_messages')} m
        set locked_until = now() + ${Math.max(0, Math.round(leaseMs))} * interval '1 millisecond'
        from unnest(${ids}::bigint[], ${leases}::int[]) as r(id, lease)
        where m.id = r.id and m.lease = r.lease
        returning m.id, m.lease, ${epochMs(sql`m.locked_until`)} as lease_expires_at`.execute(this.connection.db),
    );
    for (const row of rows) {
      for (const delivery of byReceipt.get(`${row.id}:${row.lease}`) ?? []) delivery.leaseExpiresAt = row.lease_expires_at;
    }
  }

  /** Deletes the row and stores the dead letter in one statement; a stale receipt does nothing. */
  async deadLetter(delivery: Delivery, reason: string, meta: Record<string, unknown> = {}): Promise<void> {
    this.assertOpen();
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) return;
    await this.connection.run(() =>
      sql`with gone as (
          delete from ${this.table('stem_messages')} m where m.id = ${receipt.id} and m.lease = ${receipt.lease}
          returning m.queue, m.payload, ${this.keyedWake}
        )
        insert into ${this.table('stem_dead_letters')} as d (namespace, queue, id, reason, meta, envelope, dead_at)
        select ${this.namespace}, ${delivery.queue}, ${delivery.envelope.id}, ${reason}, ${JSON.stringify(meta)}::json,
          gone.payload::json, now()
        from gone
        on conflict (namespace, queue, id) do update
          set reason = excluded.reason, meta = excluded.meta, envelope = excluded.envelope, dead_at = excluded.dead_at, seq =
            default`.execute(this.connection.db),
    );
  }

  /** A RETURNING expression that wakes the queue's idle consumers when a keyed row goes: its key has a free slot now. */
  private get keyedWake() {
    return sql`case when m.concurrency_key is not null then pg_notify(${this.channel}, m.queue) end`;
  }

  /** A page of a queue's dead letters, oldest first. */
  async listDeadLetters(queue: string, options: { limit?: number; offset?: number } = {}): Promise<DeadLetterPage> {
    this.assertOpen();
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = options.limit === undefined ? undefined : Math.max(0, Math.floor(options.limit));
    const [rows, total] = await Promise.all([
      this.connection.run(() =>
        sql<DeadLetterRow>`select ${this.deadLetterColumns()} from ${this.table('stem_dead_letters')}
          where namespace = ${this.namespace} and queue = ${queue} order by seq
          ${limit === undefined ? sql`` : sql`limit ${limit}`} offset ${offset}`.execute(this.connection.db),
      ),
      this.connection.run(() =>
        this.connection.db
          .selectFrom('stem_dead_letters')
          .select((eb) => eb.fn.countAll<string>().as('total'))
          .where('namespace', '=', this.namespace)
          .where('queue', '=', queue)
          .executeTakeFirstOrThrow(),
      ),
    ]);
    return { entries: rows.rows.map(toDeadLetter), total: Number(total.total) };
  }

  /** One dead letter, or null. */
  async getDeadLetter(queue: string, id: string): Promise<DeadLetter | null> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<DeadLetterRow>`select ${this.deadLetterColumns()} from ${this.table('stem_dead_letters')}
        where namespace = ${this.namespace} and queue = ${queue} and id = ${id}`.execute(this.connection.db),
    );
    return rows[0] === undefined ? null : toDeadLetter(rows[0]);
  }

  /**
   * Publishes dead letters back to their queue with attempt 0, oldest first, in one transaction
   * (delete the letters, insert the messages); letters with no envelope stay.
   */
  async replayDeadLetters(queue: string, options: ReplayOptions = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    const letters = this.table('stem_dead_letters');
    const ids = options.ids === undefined ? undefined : [...options.ids];
    const limit = options.limit === undefined ? undefined : Math.max(0, Math.floor(options.limit));
    const chosen = sql`select seq from ${letters}
      where namespace = ${this.namespace} and queue = ${queue} and envelope is not null
        ${ids === undefined ? sql`` : sql`and id = any(${ids}::text[])`}
      order by seq ${limit === undefined ? sql`` : sql`limit ${limit}`}`;
    if (options.dryRun === true) {
      const { rows } = await this.connection.run(() =>
        sql<
          DeadLetterRow & { seq: string }
        >`select seq, ${this.deadLetterColumns()} from ${letters} where seq in (${chosen}) order by seq`.execute(this.connection.db),
      );
      return rows.map(toDeadLetter);
    }
    return this.connection.run(() =>
      this.connection.db.transaction().execute(async (trx) => {
        const { rows } = await sql<DeadLetterRow & { seq: string }>`delete from ${letters}
          where seq in (${sql`${chosen} for update skip locked`}) returning seq, ${this.deadLetterColumns()}`.execute(trx);
        rows.sort((a, b) => a.seq.length - b.seq.length || (a.seq < b.seq ? -1 : 1));
        const entries = rows.map(toDeadLetter);
        const now = Date.now();
        const envelopes = entries.map((letter) => {
          const envelope: Envelope = startedOver(letter.envelope!, letter.queue);
          delete envelope.notBefore;
          if (options.delayMs !== undefined && options.delayMs > 0) envelope.notBefore = now + options.delayMs;
          return envelope;
        });
        await insertMessages(trx, this.schema, this.namespace, this.channel, envelopes);
        return entries;
      }),
    );
  }

  /** Deletes dead letters (all, or only `ids`); returns how many. */
  async purgeDeadLetters(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.assertOpen();
    const ids = options.ids;
    if (ids !== undefined && ids.length === 0) return 0;
    const result = await this.connection.run(() => {
      let query = this.connection.db.deleteFrom('stem_dead_letters').where('namespace', '=', this.namespace).where('queue', '=', queue);
      if (ids !== undefined) query = query.where('id', 'in', [...ids]);
      return query.executeTakeFirst();
    });
    return Number(result.numDeletedRows);
  }

  /** Waiting rows (ready, delayed, or whose lease ran out); summed over subscribers for a broadcast address. */
  async pending(queue: string): Promise<number> {
    return this.count(queue, sql`(locked_until is null or locked_until <= now())`);
  }

  /** Rows leased right now. */
  async inflight(queue: string): Promise<number> {
    return this.count(queue, sql`locked_until > now()`);
  }

  /** Deletes the waiting rows, expired leases included; leased ones stay. */
  async purge(queue: string): Promise<number> {
    this.assertOpen();
    const result = await this.connection.run(() =>
      sql`delete from ${this.table('stem_messages')} where namespace = ${this.namespace} and queue = ${queue}
        and (locked_until is null or locked_until <= now())`.execute(this.connection.db),
    );
    return Number(result.numAffectedRows ?? 0);
  }

  /** Plain queues published to or consumed from, then broadcast addresses, each sorted. */
  async listQueues(): Promise<string[]> {
    this.assertOpen();
    const rows = await this.connection.run(() =>
      this.connection.db.selectFrom('stem_queues').select('queue').where('namespace', '=', this.namespace).execute(),
    );
    const names = rows.map((row) => row.queue);
    const plain = names.filter((name) => broadcastChannel(name) === undefined).sort();
    const broadcasts = names.filter((name) => broadcastChannel(name) !== undefined).sort();
    return [...plain, ...broadcasts];
  }

  /** Closes its consumers (waiting fetches return []) and stops its timers. */
  protected override async dispose(): Promise<void> {
    for (const consumer of this.consumers) consumer.shutdown();
    this.consumers.clear();
    this.stopPrune();
    this.stopReconnect?.();
    const unlisten = await this.listening?.catch(() => undefined);
    await unlisten?.();
  }

  private deadLetterColumns() {
    return sql`id, queue, reason, meta, envelope, ${epochMs(sql`dead_at`)} as dead_at_ms`;
  }

  private async count(queue: string, condition: ReturnType<typeof sql>): Promise<number> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<{ count: string }>`select count(*) from ${this.table('stem_messages')}
        where namespace = ${this.namespace} and queue = ${queue} and ${condition}`.execute(this.connection.db),
    );
    return Number(rows[0]?.count ?? 0);
  }

  /** Records consumed queue names once per process (listQueues); a publish records its own in its statement. */
  private async remember(queues: readonly string[]): Promise<void> {
    const fresh = [...new Set(queues)].filter((queue) => !this.knownQueues.has(queue));
    if (fresh.length === 0) return;
    await this.connection.run(() =>
      this.connection.db
        .insertInto('stem_queues')
        .values(fresh.map((queue) => ({ namespace: this.namespace, queue })))
        .onConflict((oc) => oc.doNothing())
        .execute(),
    );
    for (const queue of fresh) this.knownQueues.add(queue);
  }

  private ensureListening(): Promise<unknown> {
    if (this.listening === undefined) {
      this.listening = this.connection.listener.listen(this.channel, (queue) => {
        for (const consumer of this.consumers) if (consumer.reads(queue)) consumer.poke();
      });
      this.listening.catch(() => {
        this.listening = undefined;
      });
      // Notifications sent while the LISTEN connection was down are lost: every consumer looks again.
      this.stopReconnect = this.connection.listener.onReconnect(() => {
        for (const consumer of this.consumers) consumer.poke();
      });
    }
    return this.listening;
  }

  private async unsubscribe(consumer: PostgresConsumer): Promise<void> {
    this.consumers.delete(consumer);
    if (consumer.broadcasts.size === 0 || this.isClosed) return;
    const queues = [...consumer.broadcasts];
    // The subscription ends with its consumer, and so do the copies waiting for it.
    await this.connection.run(() =>
      sql`with gone as (
          delete from ${this.table('stem_subscriptions')}
          where namespace = ${this.namespace} and consumer_id = ${consumer.consumerId} and queue = any(${queues}::text[])
        )
        delete from ${this.table('stem_messages')}
        where namespace = ${this.namespace} and subscriber = ${consumer.consumerId} and queue = any(${queues}::text[])`.execute(
        this.connection.db,
      ),
    );
  }

  /** Drops subscriptions whose consumer stopped refreshing them (it died), with their copies. */
  private async pruneSubscriptions(): Promise<void> {
    await sql`with stale as (
        delete from ${this.table('stem_subscriptions')}
        where namespace = ${this.namespace} and seen_at < now() - ${STALE_SUBSCRIPTION}
        returning queue, consumer_id
      )
      delete from ${this.table('stem_messages')} m using stale
      where m.namespace = ${this.namespace} and m.queue = stale.queue and m.subscriber = stale.consumer_id`.execute(this.connection.db);
  }
}

/**
 * How a publish writes the `queued` states of its tasks through `writer` (this plugin's result
 * backend, on the broker's connection): in the message rows (`queued`, read back by the backend
 * while it has no row of the task; migration 10), one row per task instead of two; or, when the
 * write must NOTIFY (a caller's own id may be watched already) or may meet an existing row (a
 * caller's id may be reused), as an upsert into the backend's table, which orders it against the
 * states stored there.
 */
function statesOf(
  writer: PostgresStateWriter,
  statuses: readonly TaskStatus[],
  options: SetOptions,
): Pick<PublishExtras, 'states' | 'queued'> {
  if (statuses.length === 0) return {};
  return options.quiet === true ? { queued: statuses } : { states: writer.upsertParts(statuses, options) };
}

/** The row ids and leases of the deliveries' receipts (stale or foreign receipts left out). */
function receiptArrays(deliveries: readonly Delivery[]): { ids: string; leases: string; count: number } {
  const ids: string[] = [];
  const leases: number[] = [];
  for (const delivery of deliveries) {
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) continue;
    ids.push(receipt.id);
    leases.push(receipt.lease);
  }
  // Digits only (parseReceipt checks them): array literals without pg's per-element escaping.
  return { ids: numberArray(ids), leases: numberArray(leases), count: ids.length };
}

function receiptsOf(deliveries: readonly Delivery[]): { ids: string[]; leases: number[]; byReceipt: Map<string, Delivery[]> } {
  const ids: string[] = [];
  const leases: number[] = [];
  const byReceipt = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    const receipt = parseReceipt(delivery.receipt);
    if (receipt === undefined) continue;
    ids.push(receipt.id);
    leases.push(receipt.lease);
    const same = byReceipt.get(delivery.receipt);
    if (same === undefined) byReceipt.set(delivery.receipt, [delivery]);
    else same.push(delivery);
  }
  return { ids, leases, byReceipt };
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  const letter: DeadLetter = { id: row.id, queue: row.queue, reason: row.reason, meta: row.meta, deadAt: row.dead_at_ms };
  if (row.envelope !== null) letter.envelope = row.envelope as Envelope;
  return letter;
}
