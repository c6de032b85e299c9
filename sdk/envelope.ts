import { InvalidArgumentsError, InvalidNameError, MalformedEnvelopeError } from './errors.js';

/** JSON values: what task arguments and results are made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The unit a broker carries: one task invocation. Plugins add keys under `meta` prefixed with
 * their name (`stem.chain`, `stem.group`, `routing.clamped`, …); `headers` are strings only, so
 * they survive any transport (traceparent, tenant, signature).
 */
export interface Envelope {
  /** UUIDv7, stable across retries of the same task. */
  id: string;
  /** The registered task name, e.g. `math.add`. */
  name: string;
  /** The arguments, already checked to be JSON-serialisable. */
  args: unknown;
  /** String headers: traceparent, tenant, signature, stem-schedule-id, … */
  headers: Record<string, string>;
  /** The queue (or `broadcast://channel` address) it is published to. */
  queue: string;
  /** 0–9; higher runs first. */
  priority: number;
  /** 0 for the first run, +1 for each retry. */
  attempt: number;
  /** Retries allowed after the first attempt. */
  maxRetries: number;
  /** Epoch ms before which it must not run (delay / ETA). */
  notBefore?: number;
  /** Epoch ms after which it is cancelled instead of run. */
  expiresAt?: number;
  /** How long a worker may hold it without renewing its lease. */
  visibilityTimeoutMs: number;
  /** Epoch ms when the producer created it. */
  createdAt: number;
  /** Kernel and plugin metadata (chain, group, chord, retry policy, …). */
  meta: Record<string, unknown>;
}

/**
 * A header listing W3C traceparents (comma-separated) that a task's spans should link to: a chord
 * callback carries its members' here. Canvas writes it, telemetry reads it.
 */
export const LINKS_HEADER = 'stem-links';

/** Meta keys the producer writes for per-enqueue overrides the worker must honour. */
export const META = {
  retryPolicy: 'stem.retryPolicy',
  timeLimitMs: 'stem.timeLimitMs',
  softTimeLimitMs: 'stem.softTimeLimitMs',
  resultTtlMs: 'stem.resultTtlMs',
  /** Set when the caller named the queue at enqueue: routing lets it win over routes. */
  queueExplicit: 'stem.queueExplicit',
  /** true: no state is written for the task (`ignoreResult`); false: states are written though the task ignores results. */
  ignoreResult: 'stem.ignoreResult',
} as const;

/** The prefix that marks a task address as a broadcast channel. */
export const BROADCAST_PREFIX = 'broadcast://';

/** True when `address` names a broadcast channel (`broadcast://maintenance`). */
export function isBroadcastAddress(address: string): boolean {
  return address.startsWith(BROADCAST_PREFIX);
}

/** The channel name of a broadcast address, or undefined for a plain queue. */
export function broadcastChannel(address: string): string | undefined {
  return isBroadcastAddress(address) ? address.slice(BROADCAST_PREFIX.length) : undefined;
}

/** The broadcast address of a channel: `broadcast://<channel>`. */
export function broadcastAddress(channel: string): string {
  return BROADCAST_PREFIX + channel;
}

/**
 * The longest task id, task name, queue name or broadcast channel accepted at enqueue, in UTF-8
 * bytes: far above a UUID or a business key, far below what any store or NOTIFY payload allows.
 */
export const MAX_NAME_BYTES = 256;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What each checked field is called in errors, and how to mend it. */
const NAME_FIELDS = {
  id: [
    'task id',
    `pass an id of 1 to ${MAX_NAME_BYTES} bytes of printable characters, or leave the \`id\` option out for a generated UUIDv7`,
  ],
  name: ['task name', `register and enqueue the task under a name of 1 to ${MAX_NAME_BYTES} bytes of printable characters`],
  queue: [
    'queue name',
    `name the queue with 1 to ${MAX_NAME_BYTES} bytes of printable characters, or leave the \`queue\` option out for the default queue`,
  ],
  channel: ['broadcast channel', `address it as broadcast://<channel>, a channel of 1 to ${MAX_NAME_BYTES} bytes of printable characters`],
  // An id given to read or act on (status, handle, retry, revoke): no task can have it, so no store is asked.
  taskId: ['task id', `no task can have it: task ids are 1 to ${MAX_NAME_BYTES} bytes of printable characters; check where it came from`],
  runId: [
    'workflow run id',
    `run ids are 1 to ${MAX_NAME_BYTES} bytes of printable characters; leave start()'s \`id\` option out for a generated UUIDv7`,
  ],
} as const;

/** Why `value` cannot be a name or id on every store (Postgres text refuses NUL, keys must not be empty, …), or undefined. */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `it is ${value === null ? 'null' : `a ${typeof value}`}, not a string`;
  if (value === '') return 'it is empty';
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_NAME_BYTES) return `it is ${bytes} bytes long, over the limit of ${MAX_NAME_BYTES} bytes`;
  // C0 controls (NUL included), DEL and C1 controls: invisible, and NUL is refused by Postgres text.
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(value);
  if (control !== null) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return `it contains the control character U+${code} at index ${control.index}`;
  }
  // A lone surrogate is not UTF-8: a store would keep U+FFFD, another id than the one given.
  if (LONE_SURROGATE.test(value)) return 'it contains a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/**
 * Throws InvalidNameError unless the envelope's id, task name and queue (or broadcast channel)
 * are non-empty, at most MAX_NAME_BYTES, and free of control characters.
 */
export function assertValidNames(envelope: Pick<Envelope, 'id' | 'name' | 'queue'>): void {
  const channel = typeof envelope.queue === 'string' ? broadcastChannel(envelope.queue) : undefined;
  const checks: Array<[keyof typeof NAME_FIELDS, unknown]> =
    channel === undefined
      ? [
          ['id', envelope.id],
          ['name', envelope.name],
          ['queue', envelope.queue],
        ]
      : [
          ['id', envelope.id],
          ['channel', channel],
        ];
  for (const [field, value] of checks) assertValidName(field, value);
}

/** Throws InvalidNameError naming `field` unless `value` is a usable id or name (see nameProblem). */
export function assertValidName(field: keyof typeof NAME_FIELDS, value: unknown): void {
  const problem = nameProblem(value);
  if (problem === undefined) return;
  const [label, fix] = NAME_FIELDS[field];
  throw new InvalidNameError(label, `${namePreview(value)} ${problem}`.trimStart(), fix);
}

/** The start of a value for an error message, one line whatever it holds, with a colon after it ('' for none or an empty string). */
export function namePreview(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${shown}:`;
}

/** Encodes an envelope for the wire (JSON). */
export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

const REQUIRED_FIELDS: ReadonlyArray<[keyof Envelope, string]> = [
  ['id', 'string'],
  ['name', 'string'],
  ['queue', 'string'],
  ['priority', 'number'],
  ['attempt', 'number'],
  ['maxRetries', 'number'],
  ['visibilityTimeoutMs', 'number'],
  ['createdAt', 'number'],
];

/**
 * Decodes and checks an envelope from the wire; throws MalformedEnvelopeError naming the fault
 * so that a broker can dead-letter it with that reason.
 */
export function decodeEnvelope(raw: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new MalformedEnvelopeError(`not JSON (${(error as Error).message})`);
  }
  return checkEnvelope(value);
}

/** Checks that a decoded value has every field an envelope needs. */
export function checkEnvelope(value: unknown): Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedEnvelopeError('not a JSON object');
  }
  const record = value as Record<string, unknown>;
  for (const [field, type] of REQUIRED_FIELDS) {
    if (typeof record[field] !== type) throw new MalformedEnvelopeError(`field "${field}" must be a ${type}`);
  }
  if (typeof record.headers !== 'object' || record.headers === null) record.headers = {};
  if (typeof record.meta !== 'object' || record.meta === null) record.meta = {};
  return record as unknown as Envelope;
}

/**
 * Throws InvalidArgumentsError naming the first path in `value` that JSON cannot carry faithfully:
 * functions, symbols, bigints, undefined, non-finite numbers, Maps, Sets, class instances without
 * toJSON, and cycles. Returns the size of its JSON in UTF-8 bytes (escape characters not counted),
 * measured in the same walk so that a size limit costs no second encoding.
 */
export function assertJsonSerialisable(value: unknown, path = 'args'): number {
  return checkJson(value, path, new Set());
}

function checkJson(value: unknown, path: string, ancestors: Set<object>): number {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value) + 2;
    case 'boolean':
      return value ? 4 : 5;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidArgumentsError(path, `${value} is not a finite number`);
      return Number.isInteger(value) && value >= 0 && value < 10 ? 1 : String(value).length;
    case 'undefined':
      throw new InvalidArgumentsError(path, 'undefined is not JSON (use null or leave the key out)');
    case 'function':
      throw new InvalidArgumentsError(path, 'a function cannot be sent to a worker');
    case 'symbol':
      throw new InvalidArgumentsError(path, 'a symbol is not JSON');
    case 'bigint':
      throw new InvalidArgumentsError(path, 'a bigint is not JSON (send it as a string)');
  }
  if (value === null) return 4;
  const object = value as object;
  if (ancestors.has(object)) throw new InvalidArgumentsError(path, 'circular reference');
  if (Array.isArray(object)) {
    ancestors.add(object);
    let size = object.length > 0 ? object.length + 1 : 2;
    for (let i = 0; i < object.length; i++) size += checkJson(object[i], `${path}[${i}]`, ancestors);
    ancestors.delete(object);
    return size;
  }
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    // Rare (a Date, a class with toJSON): its own encoding is the only faithful measure.
    if (typeof (object as { toJSON?: unknown }).toJSON === 'function') return Buffer.byteLength(JSON.stringify(object) ?? '');
    const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    throw new InvalidArgumentsError(path, `a ${kind} instance would not survive JSON (convert it to a plain object or array)`);
  }
  ancestors.add(object);
  let size = 2;
  let members = 0;
  for (const key of Object.keys(object)) {
    const child = (object as Record<string, unknown>)[key];
    if (child === undefined) continue;
    size +=
      key.length + 3 + checkJson(child, /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, ancestors);
    members++;
  }
  ancestors.delete(object);
  return members > 1 ? size + members - 1 : size;
}
