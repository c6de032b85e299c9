import { maskUrl } from './url.js';

/**
 * Every error Stem throws on purpose is a StemError with a stable `code`, and a message that says
 * what was wrong, where, and what to do. The CLI maps `exitCode` to the process exit status.
 */

/** Exit statuses the CLI uses (sysexits-style). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 64,
  unavailable: 69,
} as const;

/** Base class of every error Stem throws on purpose. */
export class StemError extends Error {
  /** A stable machine-readable code, e.g. `unknown-task`. */
  readonly code: string;
  /** The process exit status the CLI uses when this error ends a command. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCode.failure;
  }
}

/** A user's input (option, argument, file) is invalid. */
export class UsageError extends StemError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('usage', message, { ...options, exitCode: ExitCode.usage });
  }
}

/**
 * A task id, task name, queue name or broadcast channel given at enqueue, or an id given to read
 * or act on (status, result, retry, revoke, a workflow run), cannot be stored as it is on every
 * store (empty, too long, control characters): refused before any store is asked.
 */
export class InvalidNameError extends UsageError {
  constructor(
    readonly field: string,
    reason: string,
    fix: string,
  ) {
    super(`invalid ${field}: ${reason}; ${fix}`);
  }
}

/** A configuration value (plugin option, config file entry) is invalid. */
export class ConfigError extends StemError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('config', message, { ...options, exitCode: ExitCode.usage });
  }
}

/** A duration string such as `5x` could not be parsed. */
export class InvalidDurationError extends StemError {
  constructor(
    readonly input: unknown,
    where = 'duration',
  ) {
    super(
      'invalid-duration',
      `${where}: ${JSON.stringify(input)} is not a duration; use milliseconds (1500) or a string like 500ms, 5s, 5m, 1h, 1d`,
      { exitCode: ExitCode.usage },
    );
  }
}

/** A task name is not in the registry. */
export class UnknownTaskError extends StemError {
  constructor(
    readonly taskName: string,
    known: readonly string[] = [],
  ) {
    const hint = known.length > 0 ? `; registered tasks: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}` : '';
    super('unknown-task', `unknown task "${taskName}": register it with defineTask() in the config's tasks or a --registry module${hint}`, {
      exitCode: ExitCode.usage,
    });
  }
}

/** Task arguments cannot be encoded as JSON. */
export class InvalidArgumentsError extends StemError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(
      'invalid-arguments',
      `task arguments are not JSON-serialisable at ${path}: ${reason}; pass plain objects, arrays, strings, numbers, booleans or null`,
      {
        exitCode: ExitCode.usage,
      },
    );
  }
}

/** A server (Redis, Postgres) could not be reached. */
export class ServiceUnavailableError extends StemError {
  readonly url: string;
  constructor(url: string, cause?: unknown) {
    const reason = cause instanceof Error ? cause.message : cause === undefined ? 'no answer' : String(cause);
    // Masked here too, so that a caller that forgot to cannot print a password.
    const shown = maskUrl(url);
    super('service-unavailable', `cannot reach ${shown}: ${reason}; check that the server runs and the URL is right`, {
      cause,
      exitCode: ExitCode.unavailable,
    });
    this.url = shown;
  }
}

/**
 * A server answers, but the database its URL names cannot be used (a Redis db index the server
 * does not have): refused rather than writing somewhere else. Exit status 69, like an unreachable server.
 */
export class DatabaseUnavailableError extends StemError {
  readonly url: string;
  constructor(url: string, problem: string, fix: string, cause?: unknown) {
    const shown = maskUrl(url);
    super('database-unavailable', `${shown}: ${problem}; ${fix}`, { cause, exitCode: ExitCode.unavailable });
    this.url = shown;
  }
}

/** Waiting for a task's result took longer than the caller allowed. */
export class ResultTimeoutError extends StemError {
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
    readonly lastState: string,
  ) {
    super(
      'result-timeout',
      `task ${taskId} did not finish within ${timeoutMs}ms (last state: ${lastState}); wait longer or check that a worker ` +
        `consumes its queue`,
    );
  }
}

/** The task the caller waited for ended in state `failed`. */
export class TaskFailedError extends StemError {
  constructor(
    readonly taskId: string,
    readonly errorType: string,
    readonly errorMessage: string,
  ) {
    super('task-failed', `task ${taskId} failed: ${errorType}: ${errorMessage}`);
  }
}

/** The task the caller waited for was cancelled (revoked, expired or shut down). */
export class TaskCancelledError extends StemError {
  constructor(
    readonly taskId: string,
    readonly reason: string,
  ) {
    super('task-cancelled', `task ${taskId} was cancelled: ${reason}`);
  }
}

/** A write to a versioned record carried an older version than the stored one. */
export class StaleVersionError extends StemError {
  constructor(
    readonly kind: string,
    readonly id: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      'stale-version',
      `${kind} "${id}" was changed by someone else (you wrote version ${expected}, the store has ${actual}); read it again and retry`,
    );
  }
}

/**
 * Thrown by a handler to ask for another attempt later. It counts against `maxRetries`.
 * @example throw new Retry({ countdownMs: 5_000, reason: 'upstream busy' })
 */
export class Retry extends StemError {
  readonly countdownMs: number | undefined;
  constructor(options: { countdownMs?: number; reason?: string; cause?: unknown } = {}) {
    super('retry', options.reason ?? 'handler asked for a retry', { cause: options.cause });
    this.countdownMs = options.countdownMs;
  }
}

/** Thrown by a handler to fail the task at once, with no further retries. */
export class Unrecoverable extends StemError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('unrecoverable', message, options);
  }
}

/** The task ran past its hard time limit; its `ctx.signal` was aborted. */
export class TimeLimitExceededError extends StemError {
  constructor(readonly limitMs: number) {
    super('time-limit-exceeded', `the task ran longer than its hard time limit of ${limitMs}ms and was aborted`);
  }
}

/** The task ran past its soft time limit: the reason of `ctx.softSignal`. */
export class SoftTimeLimitExceededError extends StemError {
  constructor(readonly limitMs: number) {
    super('soft-time-limit-exceeded', `the task ran longer than its soft time limit of ${limitMs}ms`);
  }
}

/** The worker is shutting down: the reason of `ctx.signal` when a task is returned to the queue. */
export class WorkerShutdownError extends StemError {
  constructor() {
    super('worker-shutdown', 'the worker is shutting down; the task goes back to its queue');
  }
}

/** The envelope could not be decoded (not JSON, or missing fields). */
export class MalformedEnvelopeError extends StemError {
  constructor(reason: string) {
    super('malformed-envelope', `malformed task envelope: ${reason}`);
  }
}

/** Task arguments are larger than the configured `maxArgsBytes`: refused at enqueue. */
export class ArgsTooLargeError extends StemError {
  constructor(
    readonly taskName: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(
      'args-too-large',
      `task "${taskName}": its arguments are ${sizeBytes} bytes as JSON, over the limit of ${limitBytes} bytes (maxArgsBytes); ` +
        'send a reference instead (an object-store key, a URL, a row id) or raise maxArgsBytes in the Stem config',
      { exitCode: ExitCode.usage },
    );
  }
}

/** A delivery came back more often than `maxRedeliveries` allows: the dead-letter error of reason `redelivery-limit`. */
export class RedeliveryLimitError extends StemError {
  constructor(
    readonly taskId: string,
    readonly redeliveries: number,
    readonly limit: number,
  ) {
    super(
      'redelivery-limit',
      `task ${taskId} was delivered again ${redeliveries} times without finishing (its worker died or lost the lease each time), ` +
        `over maxRedeliveries ${limit}; it is set aside instead of taking down more workers: inspect it with \`stem dlq show\``,
    );
  }
}

/** A broker, backend or store was used after `close()`. */
export class ClosedError extends StemError {
  constructor(what: string) {
    super('closed', `${what} is closed; create a new one`);
  }
}

/** Where a schedule definition came from, for error messages. */
export interface DefinitionSource {
  /** The file, when it came from one. */
  file?: string;
  /** Its position in the list (0-based). */
  index?: number;
}

/** A schedule spec or entry is invalid; the message names the file, the entry and the field. */
export class InvalidScheduleError extends StemError {
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly entryId?: string,
    readonly source: DefinitionSource = {},
    readonly others: readonly InvalidScheduleError[] = [],
  ) {
    const file = source.file === undefined ? '' : `${source.file}: `;
    const entry = entryId !== undefined ? `entry "${entryId}": ` : source.index !== undefined ? `entry #${source.index + 1}: ` : '';
    const more =
      others.length === 0
        ? ''
        : ` (and ${others.length} more problem${others.length === 1 ? '' : 's'}: ${others.map((error) => error.entryLabel()).join(', ')})`;
    super('invalid-schedule', `${file}${entry}${field}: ${problem}${more}`, { exitCode: ExitCode.usage });
  }

  /** The same problem, placed in an entry of a file. */
  at(entryId: string | undefined, source: DefinitionSource): InvalidScheduleError {
    return new InvalidScheduleError(this.field, this.problem, entryId ?? this.entryId, { ...this.source, ...source });
  }

  /** The first problem, with the others counted in its message. */
  static combine(errors: readonly InvalidScheduleError[]): InvalidScheduleError {
    const [first, ...others] = errors;
    if (first === undefined) throw new RangeError('combine() needs at least one error');
    return new InvalidScheduleError(first.field, first.problem, first.entryId, first.source, others);
  }

  private entryLabel(): string {
    const entry =
      this.entryId !== undefined ? `"${this.entryId}"` : this.source.index !== undefined ? `#${this.source.index + 1}` : 'entry';
    return `${entry} ${this.field}`;
  }
}

/** No schedule entry has this id. */
export class UnknownScheduleError extends StemError {
  constructor(readonly scheduleId: string) {
    super('unknown-schedule', `no schedule entry "${scheduleId}"; \`stem schedule list\` shows the ids`, { exitCode: ExitCode.usage });
  }
}

/** A handler returned a value JSON cannot encode (a BigInt, a cycle, a throwing toJSON): that task fails, never its batch. */
export class ResultNotSerializableError extends StemError {
  constructor(
    readonly taskId: string,
    readonly taskName: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      'result-not-serializable',
      `task ${taskId} ("${taskName}") returned a value that cannot be stored as JSON (${reason}); ` +
        'return plain objects, arrays, strings, numbers, booleans or null: convert a BigInt to a string, drop cycles, and make ' +
        'toJSON() not throw',
      options,
    );
  }
}

/** `ctx.progress(value)` was given a value JSON cannot encode; the handler sees it as the rejection of that call. */
export class ProgressNotSerializableError extends StemError {
  constructor(
    readonly taskId: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      'progress-not-serializable',
      `task ${taskId}: ctx.progress() was given a value that cannot be stored as JSON (${reason}); report plain data (numbers, ` +
        `strings, plain objects)`,
      options,
    );
  }
}

/** The result backend refused one task's state (alone, after its batch was split down to it): that task fails. */
export class StateNotWritableError extends StemError {
  constructor(
    readonly taskId: string,
    readonly state: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      'state-not-writable',
      `the result backend refused the "${state}" state of task ${taskId} (${reason}); the other states of its batch were written. ` +
        `Check the value the task returned or reported`,
      options,
    );
  }
}

/**
 * A handler threw outside the promise it returned (a rejection nobody awaited, a throw in a timer
 * callback): the worker caught it at process level, failed that task, and kept running.
 */
export class TaskAsyncError extends StemError {
  constructor(
    readonly taskId: string,
    readonly origin: 'uncaughtException' | 'unhandledRejection',
    cause: unknown,
  ) {
    const what =
      origin === 'unhandledRejection'
        ? 'a promise it started rejected and nothing awaited it'
        : 'a callback it scheduled (a timer, an event) threw';
    const message = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      'task-async-error',
      `task ${taskId} failed outside its awaited code: ${what}: ${message}; await every promise the handler starts and catch ` +
        `errors inside callbacks`,
      { cause },
    );
    if (cause instanceof Error && cause.stack) this.stack = `${this.name}: ${this.message}\n    caused by ${cause.stack}`;
  }
}

/**
 * A worker was started with the id of a worker that still runs (its heartbeat is live): refused,
 * since two consumers with one id share its broadcast subscription and its control replies.
 */
export class DuplicateWorkerIdError extends StemError {
  constructor(
    readonly workerId: string,
    holder: string,
  ) {
    super(
      'duplicate-worker-id',
      `worker id "${workerId}" is already in use by ${holder}; give each worker its own id (worker.id in stem.config or ` +
        `stem.worker({ id }), or leave it out for <host>-<pid>-<random>), or if that worker has died, start again once its ` +
        `heartbeat expires (three heartbeat intervals, 30s by default)`,
      { exitCode: ExitCode.usage },
    );
  }
}

/**
 * `enqueue(…, { transaction })` was given to a broker that cannot write inside the caller's
 * transaction (it does not offer `Broker.publishInTransaction`): refused before anything is written.
 */
export class TransactionNotSupportedError extends StemError {
  constructor(readonly broker: string) {
    super(
      'transaction-not-supported',
      `the ${broker} cannot enqueue inside the caller's transaction: enqueue({ transaction }) needs a broker that can join it ` +
        `(the postgres plugin's, on the database of the transaction); enqueue after your commit instead, or configure the postgres broker`,
      { exitCode: ExitCode.usage },
    );
  }
}

/**
 * The `transaction` given to enqueue is not one the broker can write in: not a transaction its
 * plugin knows, or not open (no BEGIN yet, already failed). `reason` says which and what to pass.
 */
export class InvalidTransactionError extends StemError {
  constructor(
    readonly broker: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super('invalid-transaction', `${broker}: cannot enqueue in the given transaction: ${reason}`, { ...options, exitCode: ExitCode.usage });
  }
}

/**
 * `result()` was asked of a task enqueued with `ignoreResult`: no state is ever written for it,
 * so waiting could only time out.
 */
export class ResultIgnoredError extends StemError {
  constructor(readonly taskId: string) {
    super(
      'result-ignored',
      `task ${taskId} was enqueued with ignoreResult: no result or state is stored for it, so there is none to wait for; enqueue ` +
        `it without ignoreResult (or with ignoreResult: false) to read its result`,
    );
  }
}

/**
 * A task asks for a capability (per-key concurrency, …) that the configured broker does not
 * offer: refused at enqueue or worker start rather than silently not enforced.
 */
export class UnsupportedCapabilityError extends StemError {
  constructor(
    readonly capability: string,
    readonly broker: string,
    what: string,
  ) {
    super(
      'unsupported-capability',
      `${what} needs the broker capability "${capability}", which the ${broker} broker does not offer; use the memory, Redis or ` +
        `Postgres broker for it, or remove the option`,
      { exitCode: ExitCode.usage },
    );
  }
}

/**
 * A publish to a bounded queue (`max_length` with overflow `reject`, or `drop-oldest` with nothing
 * left it may drop) did not fit: `taskIds` are the tasks refused. `dropped` holds the dead letters
 * (`DeadLetter`) of tasks a `drop-oldest` queue dropped before it refused the rest, whose states
 * the producer still records. One line, for the CLI.
 */
export class QueueFullError extends StemError {
  constructor(
    readonly queue: string,
    readonly maxLength: number,
    readonly taskIds: readonly string[],
    readonly dropped: readonly unknown[] = [],
  ) {
    const what = taskIds.length === 1 ? `task ${taskIds[0]}` : `${taskIds.length} tasks`;
    super(
      'queue-full',
      `queue "${queue}" is full (maxLength ${maxLength}, overflow reject): ${what} refused; retry later, consume faster, or raise ` +
        `the queue's max_length`,
    );
  }
}

/**
 * The thread or child process running an isolated task ended before the task did (it called
 * `process.exit`, crashed, ran out of memory, or was killed): that attempt fails (its retry policy
 * applies) and the isolation pool starts another child.
 */
export class IsolatedChildExitedError extends StemError {
  constructor(
    readonly taskId: string,
    readonly mode: 'thread' | 'process',
    readonly childExitCode: number | null,
    readonly childSignal: string | null,
    detail?: string,
  ) {
    const how = childSignal !== null ? `was killed by ${childSignal}` : `exited with code ${childExitCode}`;
    super(
      'isolated-child-exited',
      `the ${mode} running task ${taskId} ${how} before the task finished${detail ? ` (${detail})` : ''}; ` +
        `the attempt failed and the pool replaced the ${mode}. Look for process.exit, a native crash or memory use in the handler`,
    );
  }
}

/**
 * An isolated task's handler could not be loaded in its thread or child process: the module did not
 * load, or exports no task of that name.
 */
export class IsolatedTaskLoadError extends StemError {
  constructor(task: string, detail: string, options: { cause?: unknown } = {}) {
    super(
      'isolated-task-load',
      `isolated task "${task}" could not be loaded in its child: ${detail}. An isolated task's module is imported by path in the ` +
        `child: export the task definition from it and set the task's \`handlerModule: import.meta.url\` (or list the module in ` +
        `isolation({ modules }))`,
      options,
    );
  }
}

/** `stem.listTasks()` on a result backend that has no `listTasks`. */
export class ListingNotSupportedError extends StemError {
  constructor(readonly backend: string) {
    super(
      'listing-not-supported',
      `the ${backend} result backend cannot list tasks (it has no listTasks); use the memory, Redis, Postgres or SQLite result ` +
        `backend to list and search tasks`,
      { exitCode: ExitCode.usage },
    );
  }
}

/** `stem.retry(id)` of a task the result backend does not know (never stored, or its result expired). */
export class UnknownTaskIdError extends StemError {
  constructor(readonly taskId: string) {
    super(
      'unknown-task-id',
      `task ${taskId} is unknown to the result backend (never enqueued here, or its result expired); check the id with ` +
        `stem result get ${taskId}`,
    );
  }
}

/** `stem.retry(id)` of a task that is not failed or cancelled: only a finished, unsuccessful task is retried. */
export class TaskNotRetryableError extends StemError {
  constructor(
    readonly taskId: string,
    readonly state: string,
  ) {
    super(
      'task-not-retryable',
      `task ${taskId} is ${state}: only a failed or cancelled task can be retried; wait for it to finish, or enqueue a new task`,
    );
  }
}

/** `stem.retry(id)` of a failed or cancelled task whose state holds no envelope (written by an older Stem, or by another writer). */
export class EnvelopeNotRecordedError extends StemError {
  constructor(
    readonly taskId: string,
    readonly state: string,
  ) {
    super(
      'envelope-not-recorded',
      `task ${taskId} is ${state} but its state records no envelope to run it again from (written before Stem recorded one, or by ` +
        `another writer); replay it from the dead letters (stem dlq replay --ids ${taskId}) or enqueue it again`,
    );
  }
}
