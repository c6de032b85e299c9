import { sql, type RawBuilder } from 'kysely';
import type { BrokerConsumer, Delivery } from '../../sdk/contracts/broker.js';
import { decodeEnvelope } from '../../sdk/envelope.js';
import { ClosedError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import { epochMs } from './message-rows.js';
import { isConnectionError, type CompiledStatement, type PostgresConnection } from './postgres-connection.js';

/** The rows a claim returns. */
interface ClaimedRow {
  id: string;
  queue: string;
  task_id: string;
  priority: number;
  payload: string;
  deliveries: number;
  lease: number;
  lease_expires_at: number;
}

/**
 * The extra row every claim returns: when it claimed nothing, how long until the next delayed row
 * falls due; and whether keyed rows (per-key concurrency) wait in its queues.
 */
interface DueRow {
  id: null;
  due_in_ms: number | null;
  keyed: boolean;
}

/** Stands for the claim's size in its statement, compiled once: the only value that changes between claims. */
const CLAIM_SIZE = Object.freeze({ claimSize: true });

/** A delayed fetch never sleeps less than this, so a racing claim cannot make it spin. */
const MIN_SLEEP_MS = 5;

/**
 * A consumer of the Postgres broker. `fetch` claims up to `max` rows in one statement
 * (`FOR UPDATE SKIP LOCKED`, priority then age, expired leases included); when nothing is ready
 * it sleeps until a NOTIFY for one of its queues, the next delayed row falls due, or the poll
 * interval passes (when expired leases are picked up), whichever comes first.
 */
export class PostgresConsumer implements BrokerConsumer {
  private closed = false;
  private notified = false;
  private wake: (() => void) | undefined;
  private readonly filter: RawBuilder<unknown>;
  /** The plain queues it reads: keyed rows are claimed only from these (a broadcast carries no key). */
  private readonly plainQueues: readonly string[];
  private readonly stopRefresh: () => void;
  /** The claim statements, each compiled at its first use: with keyed rows' turns, and of unkeyed rows alone. */
  private keyedClaim: CompiledStatement<ClaimedRow | DueRow> | undefined;
  private plainClaim: CompiledStatement<ClaimedRow | DueRow> | undefined;
  /**
   * Whether the last claim saw keyed rows in its queues: then the next claim takes their turns
   * (the keyed claim); otherwise it claims unkeyed rows alone, a statement that costs Postgres
   * about half as much per task (#20), and still reports whether keyed rows have come.
   */
  private keyedRowsSeen = true;

  /**
   * @param queues plain queues it reads
   * @param broadcasts broadcast addresses (`broadcast://…`) it is subscribed to as `consumerId`
   * @param onClose tells the broker it is gone
   */
  constructor(
    private readonly connection: PostgresConnection,
    readonly queues: ReadonlySet<string>,
    readonly broadcasts: ReadonlySet<string>,
    readonly consumerId: string,
    private readonly onClose: (consumer: PostgresConsumer) => Promise<void>,
  ) {
    const plain = [...queues];
    this.plainQueues = plain;
    const subscribed = [...broadcasts];
    const conditions: RawBuilder<unknown>[] = [];
    // One queue compares with `=`, so that the claim index yields rows already in order.
    if (plain.length === 1) conditions.push(sql`(subscriber = '' and queue = ${plain[0]})`);
    else if (plain.length > 1) conditions.push(sql`(subscriber = '' and queue = any(${plain}::text[]))`);
    if (subscribed.length > 0) conditions.push(sql`(subscriber = ${consumerId} and queue = any(${subscribed}::text[]))`);
    this.filter = conditions.length === 0 ? sql`false` : sql`(${sql.join(conditions, sql` or `)})`;
    this.stopRefresh =
      subscribed.length > 0
        ? connection.every(60_000, () =>
            connection.db
              .updateTable('stem_subscriptions')
              .set({ seen_at: sql<string>`now()` })
              .where('namespace', '=', connection.options.namespace)
              .where('consumer_id', '=', consumerId)
              .where('queue', 'in', subscribed)
              .execute(),
          )
        : () => undefined;
  }

  /** True when a NOTIFY for `queue` concerns this consumer. */
  reads(queue: string): boolean {
    return this.queues.has(queue) || this.broadcasts.has(queue);
  }

  /** Wakes a sleeping fetch (a NOTIFY, a reconnect, close). */
  poke(): void {
    this.notified = true;
    this.wake?.();
  }

  /** Claims up to `max` deliveries, waiting for the first; [] when aborted or closed. */
  async fetch(max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new ClosedError('postgres broker consumer');
    if (!(max >= 1)) return [];
    const { pollIntervalMs } = this.connection.options;
    while (!signal.aborted && !this.closed) {
      this.notified = false;
      let claim: { rows: ClaimedRow[]; dueInMs: number; keyedCame: boolean };
      try {
        claim = await this.connection.run(() => this.claim(Math.floor(max)));
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        await this.sleep(pollIntervalMs, signal);
        continue;
      }
      const { rows, dueInMs, keyedCame } = claim;
      if (rows.length > 0) {
        if (signal.aborted || this.closed) {
          await this.unclaim(rows).catch(() => undefined);
          return [];
        }
        const deliveries = await this.deliver(rows);
        if (deliveries.length > 0) return deliveries;
        continue;
      }
      // Keyed rows came while it claimed unkeyed ones alone: their turns are claimed at once.
      if (this.notified || keyedCame) continue;
      await this.sleep(Math.max(MIN_SLEEP_MS, Math.min(pollIntervalMs, dueInMs)), signal);
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
    this.stopRefresh();
    this.poke();
  }

  /**
   * Claims up to `max` rows in one statement (expired leases included: the claim index yields
   * them in order). When it claims nothing, the same statement also says how long until the next
   * delayed row of its queues falls due, so that an idle consumer costs one round trip per
   * wake-up; a lease running out is noticed by the next poll (the lease columns have no index, so
   * that a claim updates its row in place). While no keyed row waits in its queues, the claim
   * skips the keyed rows' turns; `keyedCame` says that a claim of unkeyed rows alone found keyed
   * rows, whose turns the next claim takes.
   */
  private async claim(max: number): Promise<{ rows: ClaimedRow[]; dueInMs: number; keyedCame: boolean }> {
    const keyed = this.keyedRowsSeen;
    const statement = keyed
      ? (this.keyedClaim ??= this.connection.compile(this.claimSql(true)))
      : (this.plainClaim ??= this.connection.compile(this.claimSql(false)));
    const values = statement.parameters.map((value) => (value === CLAIM_SIZE ? max : value));
    const rows = await this.connection.runCompiled(statement, values);
    const claimed: ClaimedRow[] = [];
    let dueInMs = Infinity;
    for (const row of rows) {
      if (row.id === null) {
        dueInMs = row.due_in_ms ?? Infinity;
        this.keyedRowsSeen = row.keyed;
      } else claimed.push(row as ClaimedRow);
    }
    // RETURNING follows no order: put the batch back in priority-then-age order.
    claimed.sort((a, b) => b.priority - a.priority || compareIds(a.id, b.id));
    return { rows: claimed, dueInMs, keyedCame: !keyed && this.keyedRowsSeen };
  }

  /**
   * A claim statement, its size left as CLAIM_SIZE: with the keyed rows' turns (`keyed`), or of
   * unkeyed rows alone. Each ends with one more row: the next due time when it claimed nothing,
   * and whether keyed rows wait in its plain queues (leased ones included: their keys hold turns).
   */
  private claimSql(keyed: boolean): RawBuilder<ClaimedRow | DueRow> {
    const max = CLAIM_SIZE;
    const messages = sql.table(`${this.connection.options.schema}.stem_messages`);
    const limits = sql.table(`${this.connection.options.schema}.stem_concurrency_limits`);
    const namespace = this.connection.options.namespace;
    const claimedColumns = sql`m.id, m.queue, m.task_id, m.priority, m.payload, m.deliveries, m.lease, ${epochMs(sql`m.locked_until`)} as
      lease_expires_at`;
    const lastRow = (keyedRows: RawBuilder<unknown>) => sql`
      select id, queue, task_id, priority, payload, deliveries, lease, lease_expires_at, null::float8 as due_in_ms, null::boolean as keyed
      from claimed
      union all
      select null, null, null, null, null, null, null, null,
        case when not exists (select 1 from claimed) then ${epochMs(sql`(select min(not_before) from ${messages}
          where namespace = ${namespace} and ${this.filter} and not_before > created_at and not_before > now()) - now()`)} end,
        ${keyedRows}`;
    // The free unkeyed rows, in priority-then-age order, locked (others skip them).
    const unkeyed = sql`select id, priority from ${messages}
      where namespace = ${namespace} and ${this.filter} and concurrency_key is null
        and not_before <= now() and (locked_until is null or locked_until <= now())
      order by priority desc, id
      limit ${max}
      for update skip locked`;
    if (!keyed) {
      // Rows locked by FOR UPDATE SKIP LOCKED were rechecked against the WHERE when locked: the update needs no lease check.
      return sql<ClaimedRow | DueRow>`with claimable as (${unkeyed}),
        claimed as (
          update ${messages} as m
          set locked_until = now() + m.visibility_ms * interval '1 millisecond', locked_by = ${this.consumerId},
              deliveries = m.deliveries + 1, lease = m.lease + 1
          from claimable c where m.id = c.id
          returning ${claimedColumns}
        )
        ${lastRow(sql`exists (select 1 from ${messages}
          where namespace = ${namespace} and queue = any(${this.plainQueues}::text[]) and concurrency_key is not null and subscriber = '')`)}`;
    }
    // Keyed rows (docs/flow-control.md): of each key, only the first `limit` rows in enqueue order (the
    // newest row's limit, or the run-time one), leased, delayed or waiting for their retry included,
    // may run; the free ones among them are claimed with the unkeyed rows. A row leased meanwhile by another claim fails the UPDATE's
    // recheck of its lease, so no row is claimed twice and no key goes over its limit.
    return sql<ClaimedRow | DueRow>`with recursive claimable as (${unkeyed}),
      keys as (
        -- The distinct keys of its queues, one index probe each (a loose index scan), not one row per waiting task.
        (select queue, concurrency_key from ${messages}
          where namespace = ${namespace} and queue = any(${this.plainQueues}::text[]) and concurrency_key is not null and subscriber = ''
          order by queue, concurrency_key limit 1)
        union all
        select n.queue, n.concurrency_key from keys k
        cross join lateral (
          select queue, concurrency_key from ${messages}
          where namespace = ${namespace} and queue = any(${this.plainQueues}::text[]) and concurrency_key is not null and subscriber = ''
            and (queue, concurrency_key) > (k.queue, k.concurrency_key)
          order by queue, concurrency_key limit 1
        ) n
      ),
      turns as (
        select f.id, f.priority from keys k
        left join ${limits} l on l.namespace = ${namespace} and l.queue = k.queue and l.key = k.concurrency_key
        cross join lateral (
          select m.id, m.priority, m.not_before, m.locked_until from ${messages} m
          where m.namespace = ${namespace} and m.queue = k.queue and m.concurrency_key = k.concurrency_key and m.subscriber = ''
          order by m.id
          limit coalesce(
            l.limit_value,
            (select n.concurrency_limit from ${messages} n
              where n.namespace = ${namespace} and n.queue = k.queue and n.concurrency_key = k.concurrency_key and n.subscriber = ''
              order by n.id desc limit 1),
            1)
        ) f
        where f.not_before <= now() and (f.locked_until is null or f.locked_until <= now())
      ),
      chosen as (
        select id from (select id, priority from claimable union all select id, priority from turns) c
        order by priority desc, id
        limit ${max}
      ),
      claimed as (
        update ${messages} as m
        set locked_until = now() + m.visibility_ms * interval '1 millisecond', locked_by = ${this.consumerId},
            deliveries = m.deliveries + 1, lease = m.lease + 1
        from chosen c where m.id = c.id and (m.locked_until is null or m.locked_until <= now())
        returning ${claimedColumns}
      )
      ${lastRow(sql`exists (select 1 from keys)`)}`;
  }

  /** Decodes claimed rows; the ones that are not envelopes are dead-lettered, in one statement. */
  private async deliver(rows: ClaimedRow[]): Promise<Delivery[]> {
    const deliveries: Delivery[] = [];
    const malformed: Array<{ row: ClaimedRow; error: string }> = [];
    for (const row of rows) {
      try {
        deliveries.push({
          envelope: decodeEnvelope(row.payload),
          queue: row.queue,
          receipt: `${row.id}:${row.lease}`,
          leaseExpiresAt: row.lease_expires_at,
          redeliveries: row.deliveries - 1,
        });
      } catch (error) {
        malformed.push({ row, error: (error as Error).message });
      }
    }
    if (malformed.length > 0) await this.connection.run(() => this.deadLetterMalformed(malformed));
    return deliveries;
  }

  private async deadLetterMalformed(malformed: Array<{ row: ClaimedRow; error: string }>): Promise<void> {
    const { schema, namespace } = this.connection.options;
    const ids = malformed.map(({ row }) => row.id);
    const leases = malformed.map(({ row }) => row.lease);
    const letterIds = malformed.map(() => uuidv7());
    const metas = malformed.map(({ row, error }) => JSON.stringify({ error, payload: row.payload, taskId: row.task_id }));
    await sql`with gone as (
        delete from ${sql.table(`${schema}.stem_messages`)} m
        using unnest(${ids}::bigint[], ${leases}::int[], ${letterIds}::text[], ${metas}::text[]) as r(id, lease, letter_id, meta)
        where m.id = r.id and m.lease = r.lease
        returning m.queue, r.letter_id, r.meta
      )
      insert into ${sql.table(`${schema}.stem_dead_letters`)} (namespace, queue, id, reason, meta, envelope, dead_at)
      select ${namespace}, queue, letter_id, 'malformed-envelope', meta::json, null, now() from gone`.execute(this.connection.db);
  }

  /** Gives back rows claimed while the fetch was being aborted: no lease runs out for nothing. */
  private async unclaim(rows: ClaimedRow[]): Promise<void> {
    const ids = rows.map((row) => row.id);
    const leases = rows.map((row) => row.lease);
    await sql`update ${sql.table(`${this.connection.options.schema}.stem_messages`)} m
      set locked_until = null, locked_by = null, deliveries = m.deliveries - 1
      from unnest(${ids}::bigint[], ${leases}::int[]) as r(id, lease)
      where m.id = r.id and m.lease = r.lease`.execute(this.connection.db);
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

/** Row ids are int8 strings: shorter is smaller, then lexical order. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
