import type { StemEvent } from './contracts/event-bus.js';

/** The longest error message an event carries; the rest is cut (events stay small). */
export const EVENT_MESSAGE_LIMIT = 500;

/**
 * Cuts `events` into JSON arrays of at most `maxBytes` UTF-8 bytes each, in order: one message per
 * array, so a transport with a payload limit (Postgres NOTIFY: 8000 bytes) never refuses a batch.
 * An event larger than `maxBytes` on its own is sent without its error message, then dropped.
 */
export function encodeEventBatches(events: readonly StemEvent[], maxBytes: number): string[] {
  if (events.length === 0) return [];
  // The usual case: the whole batch fits in one message, encoded in one call.
  const whole = JSON.stringify(events);
  if (whole.length * 3 <= maxBytes || Buffer.byteLength(whole) <= maxBytes) return [whole];
  const batches: string[] = [];
  let parts: string[] = [];
  let size = 2;
  for (const event of events) {
    let json = JSON.stringify(event);
    if (Buffer.byteLength(json) + 2 > maxBytes && 'error' in event && event.error) {
      json = JSON.stringify({ ...event, error: { type: event.error.type, message: '' } });
    }
    const bytes = Buffer.byteLength(json);
    if (bytes + 2 > maxBytes) continue;
    if (parts.length > 0 && size + 1 + bytes > maxBytes) {
      batches.push(`[${parts.join(',')}]`);
      parts = [];
      size = 2;
    }
    size += (parts.length > 0 ? 1 : 0) + bytes;
    parts.push(json);
  }
  if (parts.length > 0) batches.push(`[${parts.join(',')}]`);
  return batches;
}

/** The events of one message made by {@link encodeEventBatches}; nothing for a malformed one. */
export function decodeEventBatch(payload: string): StemEvent[] {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (event): event is StemEvent =>
        typeof event === 'object' && event !== null && typeof event.type === 'string' && typeof event.workerId === 'string',
    );
  } catch {
    return [];
  }
}
