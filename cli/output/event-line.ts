import type { StemEvent } from '../../sdk/contracts/event-bus.js';
import { isTaskEvent } from '../../sdk/contracts/event-bus.js';
import { printable } from './printable.js';

/**
 * One event as one readable line: time, type, then what it is about, e.g.
 * `2026-11-30T14:02:11.120Z task-succeeded   add[0193…] queue=default attempt=1 runtime=12ms worker=web-1`.
 * Names and messages come from producers: escaped by `printable`, so an event stays one line.
 */
export function formatEventLine(event: StemEvent): string {
  const fields: string[] = [];
  if (isTaskEvent(event)) {
    fields.push(`${event.name ?? '?'}[${event.taskId}]`);
    if (event.queue !== undefined) fields.push(`queue=${event.queue}`);
    if (event.attempt !== undefined) fields.push(`attempt=${event.attempt}`);
    if (event.runtimeMs !== undefined) fields.push(`runtime=${event.runtimeMs}ms`);
    if (event.retryDelayMs !== undefined) fields.push(`retry-in=${event.retryDelayMs}ms`);
    if (event.terminate !== undefined) fields.push(`terminate=${event.terminate}`);
    if (event.reason !== undefined) fields.push(`reason=${event.reason}`);
    if (event.error !== undefined) fields.push(`error=${event.error.type}: ${event.error.message}`);
  } else {
    if (event.queues !== undefined) fields.push(`queues=${event.queues.join(',')}`);
    if (event.concurrency !== undefined) fields.push(`concurrency=${event.concurrency}`);
    if (event.stats !== undefined)
      fields.push(`processed=${event.stats.processed ?? 0}`, `inflight=${event.stats.inflight ?? 0}`, `failed=${event.stats.failed ?? 0}`);
  }
  fields.push(`worker=${event.workerId}`);
  return `${new Date(event.at).toISOString()} ${event.type.padEnd(18)} ${printable(fields.join(' '))}`;
}
