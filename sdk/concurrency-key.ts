import type { Broker } from './contracts/broker.js';
import { type Envelope, isBroadcastAddress } from './envelope.js';
import { UnsupportedCapabilityError, UsageError } from './errors.js';
import type { TaskOptions } from './task.js';

/**
 * The headers a broker with the `concurrency` capability enforces: the key, its limit, and '1'
 * when the key's tasks must run in enqueue order. Tasks enqueued by name (another language, the
 * CLI) may set them directly.
 */
export const CONCURRENCY_HEADERS = {
  key: 'stem-concurrency-key',
  limit: 'stem-concurrency-limit',
  ordered: 'stem-ordered',
} as const;

/** The key of a task-wide limit (`concurrencyLimit` without `concurrencyKey`): `task:<name>`. */
export function taskConcurrencyKey(taskName: string): string {
  return `task:${taskName}`;
}

/** The key and limit an envelope carries, or undefined for an unkeyed one; a missing or bad limit counts as 1. */
export function concurrencyKeyOf(envelope: Envelope): { key: string; limit: number } | undefined {
  const key = envelope.headers[CONCURRENCY_HEADERS.key];
  if (key === undefined || key === '') return undefined;
  const limit = Number(envelope.headers[CONCURRENCY_HEADERS.limit] ?? '1');
  return { key, limit: Number.isInteger(limit) && limit >= 1 ? limit : 1 };
}

/** The longest concurrency key accepted, in UTF-8 bytes. */
export const MAX_CONCURRENCY_KEY_BYTES = 256;

function checkLimit(limit: unknown, where: string): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw new UsageError(`${where}: concurrencyLimit ${JSON.stringify(limit)} must be a whole number of 1 or more`);
  }
  return limit;
}

/** Parses a `stem-concurrency-limit` header (or a CLI argument): a whole number of 1 or more. */
export function parseConcurrencyLimit(value: string, where: string): number {
  const limit = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(limit >= 1)) throw new UsageError(`${where}: ${JSON.stringify(value)} is not a limit; give a whole number of 1 or more`);
  return limit;
}

/**
 * Writes the concurrency headers of a task's options onto its envelope (before the enqueue hook):
 * the key from `concurrencyKey` (a string or a function of the arguments), `task:<name>` when only
 * `concurrencyLimit` is given, limit 1 for `ordered`. Headers the caller set win over options.
 */
export function stampConcurrency(envelope: Envelope, options: TaskOptions): void {
  const { concurrencyKey, concurrencyLimit, ordered } = options;
  if (concurrencyKey === undefined && concurrencyLimit === undefined && ordered === undefined) return;
  const where = `task "${envelope.name}"`;
  if (ordered !== undefined && typeof ordered !== 'boolean') throw new UsageError(`${where}: ordered must be true or false`);
  if (ordered === true && concurrencyLimit !== undefined && concurrencyLimit !== 1) {
    throw new UsageError(`${where}: ordered: true runs one task of a key at a time; set concurrencyLimit to 1 or leave it out`);
  }
  const limit = ordered === true ? 1 : concurrencyLimit === undefined ? 1 : checkLimit(concurrencyLimit, where);
  let key: unknown;
  if (typeof concurrencyKey === 'function') key = concurrencyKey(envelope.args);
  else if (concurrencyKey !== undefined) key = concurrencyKey;
  else if (concurrencyLimit !== undefined) key = taskConcurrencyKey(envelope.name);
  else throw new UsageError(`${where}: ordered: true needs a concurrencyKey (a string or a function of the arguments)`);
  if (typeof key === 'number') key = String(key);
  if (typeof key !== 'string' || key === '' || Buffer.byteLength(key) > MAX_CONCURRENCY_KEY_BYTES) {
    throw new UsageError(
      `${where}: concurrencyKey gave ${JSON.stringify(key)}; it must give a non-empty string (or number) of at most ` +
        `${MAX_CONCURRENCY_KEY_BYTES} bytes`,
    );
  }
  const headers = envelope.headers;
  headers[CONCURRENCY_HEADERS.key] ??= key;
  headers[CONCURRENCY_HEADERS.limit] ??= String(limit);
  if (ordered === true) headers[CONCURRENCY_HEADERS.ordered] ??= '1';
}

/** The name a broker is shown by in errors: its class name, `Broker` stripped. */
function brokerName(broker: Broker): string {
  const name = broker.constructor?.name ?? 'configured';
  return name.endsWith('Broker') && name.length > 'Broker'.length ? name.slice(0, -'Broker'.length) : name;
}

/**
 * Checks a keyed envelope before it is published: a valid limit header, and a broker that
 * enforces it. Unkeyed envelopes cost one property lookup.
 */
export function assertConcurrencySupported(broker: Broker, envelope: Envelope): void {
  const key = envelope.headers[CONCURRENCY_HEADERS.key];
  if (key === undefined) return;
  if (isBroadcastAddress(envelope.queue)) {
    throw new UsageError(
      `task "${envelope.name}" to ${envelope.queue}: a broadcast runs once on every subscribed worker and cannot carry a ` +
        `concurrency key; remove the ${CONCURRENCY_HEADERS.key} header`,
    );
  }
  if (broker.concurrency === undefined) {
    throw new UnsupportedCapabilityError('concurrency', brokerName(broker), `task "${envelope.name}" with a concurrency key`);
  }
  const limit = envelope.headers[CONCURRENCY_HEADERS.limit];
  if (limit !== undefined) parseConcurrencyLimit(limit, `task "${envelope.name}": header ${CONCURRENCY_HEADERS.limit}`);
}

/** Checks at worker start that the broker can enforce the concurrency options of the tasks it will run. */
export function assertWorkerConcurrencySupported(broker: Broker, tasks: Iterable<{ name: string; options: TaskOptions }>): void {
  if (broker.concurrency !== undefined) return;
  for (const task of tasks) {
    const { concurrencyKey, concurrencyLimit, ordered } = task.options;
    if (concurrencyKey !== undefined || concurrencyLimit !== undefined || ordered === true) {
      throw new UnsupportedCapabilityError(
        'concurrency',
        brokerName(broker),
        `task "${task.name}" (concurrencyKey/concurrencyLimit/ordered)`,
      );
    }
  }
}
