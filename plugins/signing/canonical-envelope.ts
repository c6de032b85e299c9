import type { Envelope } from '../../sdk/envelope.js';

/** The header that carries the signature: `<algorithm>:<key id>:<base64 signature>`. */
export const SIGNATURE_HEADER = 'stem-signature';

/**
 * The bytes a signature covers (version 1): the JSON of the envelope's fields that must never
 * change between producer and worker, with object keys sorted at every depth and no whitespace.
 *
 * Covered: id, name, args, queue, priority, maxRetries, visibilityTimeoutMs, createdAt, expiresAt,
 * meta, and every header except the signature itself. Left out, because they change legitimately
 * after enqueue: `attempt` (each retry requeues with attempt + 1, on a worker that may hold no
 * signing key) and `notBefore` (a retry or a dead-letter replay reschedules the task). Changing
 * them can only delay a task or spend its retries, never change what runs.
 */
export function canonicalEnvelope(envelope: Envelope): string {
  const headers: Record<string, string> = {};
  for (const key of Object.keys(envelope.headers ?? {})) {
    if (key !== SIGNATURE_HEADER) headers[key] = envelope.headers[key]!;
  }
  return canonicalJson({
    v: 1,
    id: envelope.id,
    name: envelope.name,
    args: envelope.args,
    queue: envelope.queue,
    priority: envelope.priority,
    maxRetries: envelope.maxRetries,
    visibilityTimeoutMs: envelope.visibilityTimeoutMs,
    createdAt: envelope.createdAt,
    expiresAt: envelope.expiresAt,
    headers,
    meta: envelope.meta ?? {},
  });
}

/**
 * JSON with sorted object keys: the same bytes for the same value however its keys were ordered,
 * before and after a trip through JSON (undefined members dropped, toJSON applied, as JSON does).
 */
export function canonicalJson(value: unknown): string {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((item) => (item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item))).join(',')}]`;
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const member = record[key];
    if (member === undefined || typeof member === 'function' || typeof member === 'symbol') continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(member)}`);
  }
  return `{${parts.join(',')}}`;
}
