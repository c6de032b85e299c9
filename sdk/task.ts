import type { Duration, When } from './duration.js';
import type { Envelope } from './envelope.js';
import type { RetryPolicy } from './retry-policy.js';
import type { TaskHandle } from './task-handle.js';

/**
 * Options a task declares (and an enqueue may override). Plugins add their own keys by module
 * augmentation, e.g. `declare module 'stem' { interface TaskOptions { rateLimit?: string } }`.
 */
export interface TaskOptions {
  /** The queue it goes to (default: the config's defaultQueue, `default`). */
  queue?: string;
  /** 0–9, higher runs first (default 5). */
  priority?: number;
  /** Retries after the first attempt (default 0). */
  maxRetries?: number;
  /** How retries are spaced and which errors are retried. */
  retryPolicy?: RetryPolicy;
  /** Hard limit: `ctx.signal` is aborted and the attempt fails. */
  timeLimit?: Duration;
  /** Soft limit: `ctx.softSignal` is aborted; the handler may finish up. */
  softTimeLimit?: Duration;
  /** How long a worker may hold the task without renewing its lease (default 30s). */
  visibilityTimeout?: Duration;
  /** Cancel instead of run when not started within this long after enqueue. */
  expires?: Duration;
  /** How long its result is kept (default: the config's resultTtl, 1 day). */
  resultTtl?: Duration;
  /**
   * Fire and forget, as Celery's `ignore_result`: no state (queued, running, result) is written for
   * the task, and its handle's `result()` throws ResultIgnoredError at once (default false).
   */
  ignoreResult?: boolean;
  /**
   * Per-key concurrency: the key of a task (a string, or a function of its arguments such as
   * `(args) => args.tenantId`); at most `concurrencyLimit` tasks of one key run at once across
   * every worker, enforced by the broker (memory, Redis, Postgres). See docs/flow-control.md.
   */
  concurrencyKey?: string | ((args: any) => string | number);
  /** At most this many tasks of one key at once (default 1); alone, a limit for the whole task (key `task:<name>`). */
  concurrencyLimit?: number;
  /** With a concurrencyKey: one task of a key at a time, in enqueue order, retries included (limit 1). */
  ordered?: boolean;
}

/** What a handler receives besides its arguments. */
export interface TaskContext {
  /** The task id (UUIDv7), stable across retries. */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** 0 on the first attempt. */
  readonly attempt: number;
  /** Retries allowed after the first attempt. */
  readonly maxRetries: number;
  /** The queue it was delivered from. */
  readonly queue: string;
  /** The envelope's headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The envelope's metadata (chain, group, chord, …). */
  readonly meta: Readonly<Record<string, unknown>>;
  /** The whole envelope, for plugins and advanced handlers. */
  readonly envelope: Envelope;
  /** Aborted on hard time limit, revoke with terminate, and worker shutdown. */
  readonly signal: AbortSignal;
  /** Aborted when the soft time limit passes. */
  readonly softSignal: AbortSignal;
  /** The id of the worker running it. */
  readonly workerId: string;
  /** Records progress readable with `stem.status(id)`. */
  progress(value: unknown): Promise<void>;
  /** Renews this task's lease now (useful before a long synchronous stretch). */
  heartbeat(): Promise<void>;
  /** Enqueues a child task (headers such as traceparent are the caller's to pass). */
  enqueue<Args, Result>(task: TaskDefinition<Args, Result> | string, args: Args, options?: EnqueueOptions): Promise<TaskHandle<Result>>;
}

/** A task handler: arguments in, a JSON-serialisable result out. */
export type TaskHandler<Args, Result> = (args: Args, ctx: TaskContext) => Result | Promise<Result>;

/** A registered task: a name, default options, and its handler. The type parameters carry Args and Result to `stem.enqueue`. */
export interface TaskDefinition<Args = any, Result = unknown> {
  /** The unique task name, e.g. `math.add`. */
  readonly name: string;
  /** Defaults for every enqueue of this task. */
  readonly options: Readonly<TaskOptions>;
  /** The function a worker runs. */
  readonly handler: TaskHandler<Args, Result>;
}

/** Per-enqueue options: task option overrides plus scheduling and metadata. */
export interface EnqueueOptions extends TaskOptions {
  /** Do not run before: a Date, an ISO time, or a delay such as `5m`. */
  notBefore?: When;
  /** Cancel if not started by: a Date, an ISO time, or a duration from now. */
  expiresAt?: When;
  /** String headers carried with the task. */
  headers?: Record<string, string>;
  /** A custom task id (default: a new UUIDv7). */
  id?: string;
  /** Extra metadata merged into the envelope's meta. */
  meta?: Record<string, unknown>;
  /**
   * The caller's open database transaction to enqueue in (a Kysely transaction or a `pg` client
   * after BEGIN, for the postgres broker): the task exists if and only if it commits. Opaque to the
   * kernel; handed to `Broker.publishInTransaction`. A broker without it: TransactionNotSupportedError.
   */
  transaction?: unknown;
}

/**
 * Declares a task. Args and Result are inferred from the handler, or given explicitly.
 * @example export const add = defineTask({ name: 'math.add', handler: async (args: { a: number; b: number }) => args.a + args.b });
 */
export function defineTask<Args, Result>(definition: {
  name: string;
  options?: TaskOptions;
  handler: TaskHandler<Args, Result>;
}): TaskDefinition<Args, Awaited<Result>> {
  if (typeof definition.name !== 'string' || definition.name.length === 0) {
    throw new TypeError('defineTask: `name` must be a non-empty string such as "math.add"');
  }
  if (typeof definition.handler !== 'function') {
    throw new TypeError(`defineTask("${definition.name}"): \`handler\` must be a function`);
  }
  return Object.freeze({
    name: definition.name,
    options: Object.freeze({ ...definition.options }),
    handler: definition.handler as TaskHandler<Args, Awaited<Result>>,
  });
}

/** True when `value` looks like a TaskDefinition (used to load registry modules). */
export function isTaskDefinition(value: unknown): value is TaskDefinition {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TaskDefinition).name === 'string' &&
    typeof (value as TaskDefinition).handler === 'function' &&
    typeof (value as TaskDefinition).options === 'object'
  );
}
