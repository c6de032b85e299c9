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

const INSERT = `insert into stem_messages (namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before, created_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/**
 * Inserts envelopes as message rows (run it inside a transaction): one row per envelope, or per
 * live subscriber for a broadcast address; queue names not in `knownQueues` are recorded for
 * listQueues and returned (add them to `knownQueues` once the transaction committed).
 */
export function insertMessages(connection: SqliteConnection, namespace: string, envelopes: readonly Envelope[], knownQueues: ReadonlySet<string>): string[] {
  const fresh: string[] = [];
  const insert = connection.prepare(INSERT);
  const now = Date.now();
  let subscribers: Map<string, string[]> | undefined;
  for (const envelope of envelopes) {
    const notBefore = typeof envelope.notBefore === 'number' && Number.isFinite(envelope.notBefore) ? envelope.notBefore : now;
    const payload = encodeEnvelope(envelope);
    const priority = clampPriority(envelope.priority);
    const visibility = visibilityOf(envelope);
    if (broadcastChannel(envelope.queue) === undefined) {
      insert.run(namespace, envelope.queue, '', envelope.id, priority, payload, visibility, notBefore, now);
    } else {
      subscribers ??= new Map();
      let live = subscribers.get(envelope.queue);
      if (live === undefined) {
        live = connection
          .prepare('select consumer_id from stem_subscriptions where namespace = ? and queue = ? and seen_at > ? order by consumer_id')
          .pluck()
          .all(namespace, envelope.queue, now - SUBSCRIPTION_TTL_MS) as string[];
        subscribers.set(envelope.queue, live);
      }
      for (const consumerId of live) insert.run(namespace, envelope.queue, consumerId, envelope.id, priority, payload, visibility, notBefore, now);
    }
    if (!knownQueues.has(envelope.queue) && !fresh.includes(envelope.queue)) {
      connection.prepare('insert into stem_queues (namespace, queue) values (?, ?) on conflict do nothing').run(namespace, envelope.queue);
      fresh.push(envelope.queue);
    }
  }
  return fresh;
}
