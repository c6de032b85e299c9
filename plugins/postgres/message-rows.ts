import { sql, type Kysely, type RawBuilder } from 'kysely';
import { broadcastChannel, encodeEnvelope, type Envelope } from '../../sdk/envelope.js';
import type { Database } from './database.js';
import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import type { StateWriteSql } from './postgres-state-writer.js';

/** Lease length for an envelope that carries no usable visibility timeout (as the memory broker). */
export const DEFAULT_VISIBILITY_MS = 30_000;

/** How long a broadcast subscription counts without being refreshed by its consumer. */
export const SUBSCRIPTION_TTL = sql`interval '5 minutes'`;

/** Priorities are 0–9 on every broker; anything else is clamped. */
export function clampPriority(priority: number): number {
  return Number.isFinite(priority) ? Math.min(9, Math.max(0, Math.round(priority))) : 0;
}

/** A receipt is `<row id>:<lease>`: the row and the claim it came from, so stale receipts do nothing. */
export function parseReceipt(receipt: string): { id: string; lease: number } | undefined {
  const colon = receipt.indexOf(':');
  if (colon <= 0) return undefined;
  const id = receipt.slice(0, colon);
  const lease = Number(receipt.slice(colon + 1));
  return /^\d+$/.test(id) && Number.isInteger(lease) ? { id, lease } : undefined;
}

/**
 * Numbers (or integer texts) as a Postgres array literal, for a `$n::int[]` (`bigint[]`, `float8[]`)
 * parameter: pg would quote and escape every element of a JS array (two regex replaces each), which
 * numbers never need. The server reads the same literal either way.
 */
export function numberArray(values: readonly (number | string)[]): string {
  return `{${values.join(',')}}`;
}

/** Epoch milliseconds of a timestamptz expression, as float8 (pg returns it as a number). */
export function epochMs(expression: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(extract(epoch from ${expression}) * 1000)::float8`;
}

/** What a publish writes beside its message rows, in the same statement. */
export interface PublishExtras {
  /** Queue names to record in `stem_queues` (for listQueues), first seen by this process. */
  newQueues?: readonly string[];
  /** The result backend's upsert of the `queued` states and its NOTIFY (its state writer's `upsertParts`). */
  states?: StateWriteSql;
  /**
   * `queued` states to store in their message rows' `queued_state` column (by task id), where the
   * result backend reads them while it has no row of its own for the task (migration 10).
   */
  queued?: readonly TaskStatus[];
}

/**
 * Inserts envelopes as message rows in ONE statement, whatever their number (arrays through
 * unnest, so the parameter count stays fixed), fans broadcast addresses out to one row per live
 * subscriber, and NOTIFYs each distinct queue so that idle consumers wake at once. `extras` ride
 * in the same statement, so a publish that fails (a NOTIFY payload too long, a dropped
 * connection) leaves no message, no queue name and no state behind.
 */
export async function insertMessages(
  db: Kysely<Database>,
  schema: string,
  namespace: string,
  channel: string,
  envelopes: readonly Envelope[],
  extras: PublishExtras = {},
): Promise<void> {
  if (envelopes.length === 0) return;
  await messageInsert(schema, namespace, channel, envelopes, extras).execute(db);
}

/** The one statement of `insertMessages`, to run on a connection of the caller's choosing (its transaction). */
export function messageInsert(
  schema: string,
  namespace: string,
  channel: string,
  envelopes: readonly Envelope[],
  extras: PublishExtras = {},
): RawBuilder<unknown> {
  const n = envelopes.length;
  const queues = new Array<string>(n);
  const ids = new Array<string>(n);
  const priorities = new Array<number>(n);
  const visibilities = new Array<number>(n);
  const notBefores = new Array<number | null>(n);
  // The payloads travel as one text, joined by SEPARATOR and split by the server (string_to_array):
  // a text[] would escape every quote of every payload on the way in (pg's array literal) and
  // unescape it in the server, and a JSON array would be parsed whole by the server.
  let payloads = '';
  for (let i = 0; i < n; i++) {
    const envelope = envelopes[i]!;
    queues[i] = envelope.queue;
    ids[i] = envelope.id;
    priorities[i] = clampPriority(envelope.priority);
    payloads += (i === 0 ? '' : SEPARATOR) + encodeEnvelope(envelope);
    visibilities[i] =
      envelope.visibilityTimeoutMs > 0 ? Math.min(Math.round(envelope.visibilityTimeoutMs), 2_147_483_647) : DEFAULT_VISIBILITY_MS;
    notBefores[i] = typeof envelope.notBefore === 'number' && Number.isFinite(envelope.notBefore) ? envelope.notBefore : null;
  }
  const { newQueues = [], states, queued } = extras;
  // The states travel the same way ('' for a task without one).
  const queuedStates = queued === undefined ? undefined : queuedStatesText(envelopes, queued);
  const messages = sql.table(`${schema}.stem_messages`);
  const subscriptions = sql.table(`${schema}.stem_subscriptions`);
  const hasBroadcast = queues.some((queue) => broadcastChannel(queue) !== undefined);
  const input =
    queuedStates === undefined
      ? sql`rows from (unnest(${queues}::text[]), unnest(${ids}::text[]), unnest(${priorities}::int[]),
        unnest(string_to_array(${payloads}::text, ${SEPARATOR}::text)), unnest(${visibilities}::int[]),
        unnest(${notBefores}::float8[]))
      with ordinality as i(queue, task_id, priority, payload, visibility_ms, not_before, ord)`
      : sql`rows from (unnest(${queues}::text[]), unnest(${ids}::text[]), unnest(${priorities}::int[]),
        unnest(string_to_array(${payloads}::text, ${SEPARATOR}::text)), unnest(${visibilities}::int[]),
        unnest(${notBefores}::float8[]), unnest(string_to_array(${queuedStates}::text, ${SEPARATOR}::text)))
      with ordinality as i(queue, task_id, priority, payload, visibility_ms, not_before, queued_state, ord)`;
  const notBefore = sql`case when i.not_before is null then now() else to_timestamp(i.not_before / 1000.0) end`;
  const columns =
    queuedStates === undefined
      ? sql`(namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before)`
      : sql`(namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before, queued_state)`;
  const queuedState = queuedStates === undefined ? sql`` : sql`, nullif(i.queued_state, '')`;
  const rows = hasBroadcast
    ? sql`select ${namespace}, i.queue, coalesce(s.consumer_id, ''), i.task_id, i.priority, i.payload, i.visibility_ms, ${notBefore}
          ${queuedState}
        from ${input}
        left join ${subscriptions} s on i.queue like 'broadcast://%' and s.namespace = ${namespace} and s.queue = i.queue
          and s.seen_at > now() - ${SUBSCRIPTION_TTL}
        where i.queue not like 'broadcast://%' or s.consumer_id is not null
        order by i.ord, s.consumer_id`
    : sql`select ${namespace}, i.queue, '', i.task_id, i.priority, i.payload, i.visibility_ms, ${notBefore}${queuedState}
        from ${input} order by i.ord`;
  const wake = sql`select pg_notify(${channel}, q.queue) from (select distinct queue from inserted) q`;
  if (newQueues.length === 0 && states === undefined) {
    return sql`with inserted as (
        insert into ${messages} ${columns}
        ${rows}
        returning queue
      )
      ${wake}`;
  }
  // Data-modifying CTEs all run; a plain select runs only where read, hence the counts below.
  const known =
    newQueues.length === 0
      ? sql``
      : sql`, known as (
          insert into ${sql.table(`${schema}.stem_queues`)} (namespace, queue)
          select ${namespace}, unnest(${[...newQueues]}::text[]) on conflict do nothing
        )`;
  const written = states === undefined ? sql`` : sql`, written as (${states.written})`;
  const notified = states === undefined ? sql`` : sql`, (select count(*) from (${states.notify}) s) as states`;
  return sql`with inserted as (
      insert into ${messages} ${columns}
      ${rows}
      returning queue
    )${known}${written}
    select (select count(*) from (${wake}) w) as messages${notified}`;
}

/**
 * Joins the texts of a publish. JSON.stringify escapes every control character (RFC 8259), so an
 * encoded envelope or status never contains U+0001.
 */
const SEPARATOR = '\u0001';

/**
 * For each envelope in order, its `queued` status as JSON or '' when it has none, joined by
 * SEPARATOR; undefined when none has one (string_to_array makes no element of an empty text).
 */
function queuedStatesText(envelopes: readonly Envelope[], queued: readonly TaskStatus[]): string | undefined {
  const byId = new Map<string, TaskStatus>();
  for (const status of queued) byId.set(status.id, status);
  let text = '';
  let any = false;
  for (let i = 0; i < envelopes.length; i++) {
    const status = byId.get(envelopes[i]!.id);
    if (status !== undefined) any = true;
    text += (i === 0 ? '' : SEPARATOR) + (status === undefined ? '' : JSON.stringify(status));
  }
  return any ? text : undefined;
}
