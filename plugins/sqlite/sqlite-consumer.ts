import type { BrokerConsumer, Delivery } from '../../sdk/contracts/broker.js';
import { decodeEnvelope } from '../../sdk/envelope.js';
import { ClosedError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { SqliteConcurrency } from './sqlite-concurrency.js';
import { isBusyError, type SqliteConnection } from './sqlite-connection.js';

/** The rows a claim returns. */
interface ClaimedRow {
  id: number;
  queue: string;
  task_id: string;
  priority: number;
  payload: string;
  deliveries: number;
  lease: number;
  locked_until: number;
}

/** One source of messages: a plain queue (subscriber '') or a broadcast address and this consumer's copies. */
interface Source {
  queue: string;
  subscriber: string;
}

/** A fetch never sleeps less than this, so that a racing claim cannot make it spin. */
const MIN_SLEEP_MS = 2;
/**
 * The longest an idle fetch sleeps without looking: the change monitor wakes it on any commit,
 * and it computes when the next delayed message or lease falls due; this bounds what both miss.
 */
const SAFETY_SLEEP_MS = 1_000;
/** How long a fetch waits before trying again when the write lock stayed busy past the busy timeout. */
const BUSY_RETRY_MS = 10;

/** Unkeyed rows only (the claim index lists no others); keyed ones come from SqliteConcurrency. */
const CANDIDATES = `select id, priority from stem_messages
  where namespace = ? and queue = ? and subscriber = ? and concurrency_key is null
    and not_before <= ? and (locked_until is null or locked_until <= ?)
  order by priority desc, id limit ?`;
/**
 * A claim draws its lease at random (53 bits, exact as a JS number): a receipt `<id>:<lease>` names
 * this claim only, even when the row id is reused by a later message (ids are rowids, not
 * AUTOINCREMENT, so that an insert updates no sequence row).
 */
const CLAIM = `update stem_messages set locked_until = ? + visibility_ms, locked_by = ?, deliveries = deliveries + 1,
    lease = (random() & 9007199254740991)
  where id = ? returning id, queue, task_id, priority, payload, deliveries, lease, locked_until`;

/**
 * A consumer of the SQLite broker. `fetch` claims up to `max` rows in one `BEGIN IMMEDIATE`
 * transaction (priority, then age; expired leases included); when nothing is ready it sleeps until
 * another process (or this one) commits, the next delayed message or lease falls due, or a second
 * passes, whichever comes first.
 */
export class SqliteConsumer implements BrokerConsumer {
  private closed = false;
  private notified = false;
  private wake: (() => void) | undefined;
  private readonly sources: Source[];
  private readonly unsubscribe: () => void;
  private readonly stopRefresh: () => void;

  /**
   * @param concurrency the broker's per-key concurrency: which keyed rows a claim may take
   * @param queues plain queues it reads
   * @param broadcasts broadcast addresses (`broadcast://…`) it is subscribed to as `consumerId`
   * @param onClose tells the broker it is gone
   */
  constructor(
    private readonly connection: SqliteConnection,
    private readonly namespace: string,
    private readonly concurrency: SqliteConcurrency,
    readonly queues: ReadonlySet<string>,
    readonly broadcasts: ReadonlySet<string>,
    readonly consumerId: string,
    private readonly onClose: (consumer: SqliteConsumer) => Promise<void>,
  ) {
    this.sources = [
      ...[...queues].map((queue) => ({ queue, subscriber: '' })),
      ...[...broadcasts].map((queue) => ({ queue, subscriber: consumerId })),
    ];
    this.unsubscribe = connection.monitor.subscribe(() => this.poke());
    const subscribed = [...broadcasts];
    this.stopRefresh =
      subscribed.length > 0
        ? connection.every(60_000, () => {
            const refresh = connection.prepare(
              'update stem_subscriptions set seen_at = ? where namespace = ? and consumer_id = ? and queue = ?',
            );
            const now = Date.now();
            connection.immediate(() => {
              for (const queue of subscribed) refresh.run(now, namespace, consumerId, queue);
            });
          })
        : () => undefined;
  }

  /** Wakes a sleeping fetch (a change, close). */
  poke(): void {
    this.notified = true;
    this.wake?.();
  }

  /** Claims up to `max` deliveries, waiting for the first; [] when aborted or closed. */
  async fetch(max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new ClosedError('sqlite broker consumer');
    if (!(max >= 1)) return [];
    while (!signal.aborted && !this.closed) {
      this.notified = false;
      let claim: { rows: ClaimedRow[]; dueInMs: number };
      try {
        claim = this.claim(Math.floor(max));
      } catch (error) {
        if (!isBusyError(error)) throw error;
        await this.sleep(BUSY_RETRY_MS, signal);
        continue;
      }
      const { rows, dueInMs } = claim;
      if (rows.length > 0) {
        const deliveries = this.deliver(rows);
        if (deliveries.length > 0) return deliveries;
        continue;
      }
      if (this.notified) continue;
      await this.sleep(Math.max(MIN_SLEEP_MS, Math.min(SAFETY_SLEEP_MS, dueInMs)), signal);
    }
    return [];
  }

  /** Stops reading; a waiting fetch returns []. Broadcast subscriptions of this consumer end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown();
    await this.onClose(this);
  }

  /** Marks it closed and wakes a waiting fetch, without telling the broker (which is closing). */
  shutdown(): void {
    this.closed = true;
    this.unsubscribe();
    this.stopRefresh();
    this.poke();
  }

  /**
   * Claims up to `max` rows in one `BEGIN IMMEDIATE` transaction: the best candidates of each
   * source, merged by priority then age, each leased for its visibility timeout. Keyed rows
   * (docs/flow-control.md) are candidates only while among the first `limit` rows of their key;
   * the transaction holds the write lock, so no other claim can take a slot meanwhile. When it claims
   * nothing, the same transaction says how long until the next delayed row or lease of its sources
   * falls due (one index seek each).
   */
  private claim(max: number): { rows: ClaimedRow[]; dueInMs: number } {
    const connection = this.connection;
    return connection.immediate(() => {
      const now = Date.now();
      const candidates = connection.prepare(CANDIDATES);
      let chosen: Array<{ id: number; priority: number }> = [];
      let merged = this.sources.length > 1;
      for (const source of this.sources) {
        chosen.push(
          ...(candidates.all(this.namespace, source.queue, source.subscriber, now, now, max) as Array<{ id: number; priority: number }>),
        );
        if (source.subscriber !== '') continue;
        const keyed = this.concurrency.candidates(source.queue, now);
        if (keyed.length === 0) continue;
        chosen.push(...keyed);
        merged = true;
      }
      if (merged) chosen = chosen.sort((a, b) => b.priority - a.priority || a.id - b.id).slice(0, max);
      if (chosen.length > 0) {
        const update = connection.prepare(CLAIM);
        return { rows: chosen.map(({ id }) => update.get(now, this.consumerId, id) as ClaimedRow), dueInMs: 0 };
      }
      let due = Infinity;
      // Delayed rows are those due after they were made (the partial index holds only them).
      const nextDelayed = connection
        .prepare(
          'select min(not_before) from stem_messages where namespace = ? and queue = ? and not_before > ? and not_before > created_at',
        )
        .pluck();
      const nextLease = connection
        .prepare('select min(locked_until) from stem_messages where namespace = ? and queue = ? and locked_until > ?')
        .pluck();
      for (const source of this.sources) {
        const delayed = nextDelayed.get(this.namespace, source.queue, now) as number | null;
        const leased = nextLease.get(this.namespace, source.queue, now) as number | null;
        if (delayed !== null) due = Math.min(due, delayed);
        if (leased !== null) due = Math.min(due, leased);
      }
      return { rows: [], dueInMs: due - now };
    });
  }

  /** Decodes claimed rows; the ones that are not envelopes are dead-lettered. */
  private deliver(rows: ClaimedRow[]): Delivery[] {
    const deliveries: Delivery[] = [];
    const malformed: Array<{ row: ClaimedRow; error: string }> = [];
    for (const row of rows) {
      try {
        deliveries.push({
          envelope: decodeEnvelope(row.payload),
          queue: row.queue,
          receipt: `${row.id}:${row.lease}`,
          leaseExpiresAt: row.locked_until,
          redeliveries: row.deliveries - 1,
        });
      } catch (error) {
        malformed.push({ row, error: (error as Error).message });
      }
    }
    if (malformed.length > 0) this.deadLetterMalformed(malformed);
    return deliveries;
  }

  private deadLetterMalformed(malformed: Array<{ row: ClaimedRow; error: string }>): void {
    const connection = this.connection;
    connection.immediate(() => {
      const now = Date.now();
      for (const { row, error } of malformed) {
        const gone = connection.prepare('delete from stem_messages where id = ? and lease = ?').run(row.id, row.lease);
        if (gone.changes === 0) continue;
        connection
          .prepare(
            'insert or replace into stem_dead_letters (namespace, queue, id, reason, meta, envelope, dead_at) values (?, ?, ?, ?, ' +
              '?, null, ?)',
          )
          .run(
            this.namespace,
            row.queue,
            uuidv7(),
            'malformed-envelope',
            JSON.stringify({ error, payload: row.payload, taskId: row.task_id }),
            now,
          );
      }
    });
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.notified || signal.aborted || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, 2_147_483_647));
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }
}
