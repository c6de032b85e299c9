import { broadcastChannel, encodeEnvelope, type Envelope } from '../../sdk/envelope.js';
import type { SqliteConnection } from './sqlite-connection.js';

/** Lease length for an envelope that carries no usable visibility timeout (as the memory broker). */
export const DEFAULT_VISIBILITY_MS = 30_000;

/** How long a broadcast subscription counts without being refreshed by its consumer. */
export const SUBSCRIPTION_TTL_MS = 5 * 60_000;

/** Priorities are 0–9 on every broker; anything else is clamped. */
export function clampPriority(priority: number): number {
  return Number.isFinite(priority) ? Math.min(9, Math.max(0, Math.round(priority))) : 0;
}

/** The lease of an envelope: its visibility timeout, or the default. */
export function visibilityOf(envelope: Envelope): number {
  return envelope.visibilityTimeoutMs > 0 ? Math.min(Math.round(envelope.visibilityTimeoutMs), 2_147_483_647) : DEFAULT_VISIBILITY_MS;
}

/** A receipt is `<row id>:<lease>`: the row and the claim it came from, so stale receipts do nothing. */
export function parseReceipt(receipt: string): { id: number; lease: number } | undefined {
  const colon = receipt.indexOf(':');
  if (colon <= 0) return undefined;
  const id = Number(receipt.slice(0, colon));
  const lease = Number(receipt.slice(colon + 1));
  return Number.isSafeInteger(id) && Number.isInteger(lease) ? { id, lease } : undefined;
}

/** Rows per INSERT statement: 9 parameters each, under SQLite's oldest variable limit (999). */
export const ROWS_PER_STATEMENT = 100;

const INSERT_HEAD =
  'insert into stem_messages (namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before, created_at) values ';
const ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

const insertSqls: string[] = [];

/** The INSERT of `rows` rows: built once per size (the same string each time, so the connection's statement cache finds it at once). */
export function insertSql(rows: number): string {
  return (insertSqls[rows] ??= INSERT_HEAD + Array.from({ length: rows }, () => ROW).join(', '));
}

/**
 * Inserts envelopes as message rows (run it inside a transaction): one row per envelope, or per
 * live subscriber for a broadcast address, up to 100 rows per statement; queue names not in
 * `knownQueues` are recorded for listQueues and returned (add them to `knownQueues` once the
 * transaction committed).
 */
export function insertMessages(
  connection: SqliteConnection,
  namespace: string,
  envelopes: readonly Envelope[],
  knownQueues: ReadonlySet<string>,
): string[] {
  let fresh: string[] | undefined;
  const now = Date.now();
  const values: unknown[] = [];
  let subscribers: Map<string, string[]> | undefined;
  for (const envelope of envelopes) {
    const { queue } = envelope;
    const notBefore = typeof envelope.notBefore === 'number' && Number.isFinite(envelope.notBefore) ? envelope.notBefore : now;
    const payload = encodeEnvelope(envelope);
    const priority = clampPriority(envelope.priority);
    const visibility = visibilityOf(envelope);
    if (broadcastChannel(queue) === undefined) {
      values.push(namespace, queue, '', envelope.id, priority, payload, visibility, notBefore, now);
    } else {
      subscribers ??= new Map();
      let live = subscribers.get(queue);
      if (live === undefined) {
        live = connection
          .prepare('select consumer_id from stem_subscriptions where namespace = ? and queue = ? and seen_at > ? order by consumer_id')
          .pluck()
          .all(namespace, queue, now - SUBSCRIPTION_TTL_MS) as string[];
        subscribers.set(queue, live);
      }
      for (const consumerId of live) values.push(namespace, queue, consumerId, envelope.id, priority, payload, visibility, notBefore, now);
    }
    if (!knownQueues.has(queue) && !(fresh ??= []).includes(queue)) {
      connection.prepare('insert into stem_queues (namespace, queue) values (?, ?) on conflict do nothing').run(namespace, queue);
      fresh.push(queue);
    }
  }
  insertRows(connection, values);
  return fresh ?? [];
}

/** Runs the INSERTs of the flat row values (9 a row), a full statement at a time, then one for the rest. */
function insertRows(connection: SqliteConnection, values: unknown[]): void {
  const rows = values.length / 9;
  const full = Math.floor(rows / ROWS_PER_STATEMENT);
  if (full > 0) {
    const insert = connection.prepare(insertSql(ROWS_PER_STATEMENT));
    const width = ROWS_PER_STATEMENT * 9;
    for (let chunk = 0; chunk < full; chunk++) insert.run(values.slice(chunk * width, (chunk + 1) * width));
  }
  const rest = rows - full * ROWS_PER_STATEMENT;
  if (rest > 0) connection.prepare(insertSql(rest)).run(full === 0 ? values : values.slice(full * ROWS_PER_STATEMENT * 9));
}
