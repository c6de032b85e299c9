import type { ResultBackend, TaskStatus, Unsubscribe } from './contracts/result-backend.js';
import { isTerminal } from './contracts/result-backend.js';
import { parseDuration, type Duration } from './duration.js';
import { META, type Envelope } from './envelope.js';
import { ResultIgnoredError, ResultTimeoutError, TaskCancelledError, TaskFailedError } from './errors.js';

/** The status of an id the backend does not know: pending (not an error). */
export function pendingStatus(id: string): TaskStatus {
  return { id, state: 'pending', attempt: 0, updatedAt: 0 };
}

/** How long `result()` waits by default. */
export const DEFAULT_RESULT_TIMEOUT_MS = 30_000;
const SAFETY_POLL_MS = 1_000;

/**
 * Waits until task `id` reaches a terminal state and returns that status. Watches the backend for
 * changes (so it wakes at once) and polls once a second as a safety net for a missed notification.
 */
export async function waitForTerminalStatus(
  backend: ResultBackend,
  id: string,
  options: { timeoutMs?: Duration; signal?: AbortSignal } = {},
): Promise<TaskStatus> {
  const timeoutMs = parseDuration(options.timeoutMs ?? DEFAULT_RESULT_TIMEOUT_MS, 'timeoutMs');
  let last: TaskStatus | null = null;
  let settle!: (status: TaskStatus) => void;
  const terminal = new Promise<TaskStatus>((resolve) => (settle = resolve));
  const consider = (status: TaskStatus | null): void => {
    if (status === null) return;
    last = status;
    if (isTerminal(status.state)) settle(status);
  };
  // The deadline runs from the call, the watch's setup included: a backend that cannot answer
  // (a subscriber connection reconnecting for ever) still ends the wait at timeoutMs.
  const timers: NodeJS.Timeout[] = [];
  const timedOut = new Promise<null>((resolve) => timers.push(setTimeout(() => resolve(null), timeoutMs)));
  const aborted = new Promise<null>((resolve) => {
    if (options.signal?.aborted) resolve(null);
    else options.signal?.addEventListener('abort', () => resolve(null), { once: true });
  });
  const setup = watchFrom(backend, id, consider);
  let watching: { unsubscribe: Unsubscribe; current: TaskStatus | null } | null;
  try {
    watching = await Promise.race([setup, timedOut, aborted]);
  } catch (error) {
    for (const timer of timers) clearTimeout(timer);
    throw error;
  }
  if (watching === null) {
    for (const timer of timers) clearTimeout(timer);
    // The watch may still come up: it is ended then.
    setup.then(({ unsubscribe }) => unsubscribe().catch(() => undefined)).catch(() => undefined);
    throw new ResultTimeoutError(id, timeoutMs, 'pending');
  }
  const { unsubscribe, current } = watching;
  try {
    consider(current);
    const poll = setInterval(() => void backend.get(id).then(consider, () => undefined), Math.min(SAFETY_POLL_MS, timeoutMs));
    timers.push(poll);
    const status = await Promise.race([terminal, timedOut, aborted]);
    if (status === null) throw new ResultTimeoutError(id, timeoutMs, (last as TaskStatus | null)?.state ?? 'pending');
    return status;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    // Housekeeping, not part of the answer: the caller has its status without waiting for the
    // backend to confirm (on Redis an UNSUBSCRIBE round trip).
    unsubscribe().catch(() => undefined);
  }
}

/** Starts watching `id` and reads its current status (in one step where the backend can). */
async function watchFrom(
  backend: ResultBackend,
  id: string,
  listener: (status: TaskStatus) => void,
): Promise<{ unsubscribe: Unsubscribe; current: TaskStatus | null }> {
  if (backend.watchCurrent !== undefined) return backend.watchCurrent(id, listener);
  const unsubscribe = await backend.watch(id, listener);
  const current = await backend.get(id).catch(async (error: unknown) => {
    await unsubscribe().catch(() => undefined);
    throw error;
  });
  return { unsubscribe, current };
}

/** Turns a terminal status into the result, or throws TaskFailedError / TaskCancelledError. */
export function resultOf<Result>(status: TaskStatus): Result {
  if (status.state === 'failed')
    throw new TaskFailedError(status.id, status.error?.type ?? 'Error', status.error?.message ?? 'unknown error');
  if (status.state === 'cancelled') throw new TaskCancelledError(status.id, status.error?.message ?? 'cancelled');
  return status.result as Result;
}

/** What `stem.enqueue` returns: the id, and a way to await the typed result. */
export class TaskHandle<Result = unknown> {
  /** The task id. */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** The queue it was published to (after routing). */
  readonly queue: string;

  /** The envelope as published (undefined for a handle made from an id alone). */
  readonly envelope: Envelope | undefined;

  constructor(
    private readonly backend: ResultBackend,
    task: Envelope | { id: string; name?: string; queue?: string },
  ) {
    this.id = task.id;
    this.name = task.name ?? '';
    this.queue = task.queue ?? '';
    this.envelope = 'createdAt' in task ? task : undefined;
  }

  /** The current status (`pending` when the backend does not know the id yet). */
  async status(): Promise<TaskStatus> {
    return (await this.backend.get(this.id)) ?? pendingStatus(this.id);
  }

  /**
   * Waits for the task to finish and returns its result. Throws TaskFailedError,
   * TaskCancelledError, or ResultTimeoutError after `timeoutMs` (default 30s); ResultIgnoredError
   * at once for a task enqueued with `ignoreResult` (nothing is stored to wait for).
   */
  async result(options: { timeoutMs?: Duration; signal?: AbortSignal } = {}): Promise<Result> {
    if (this.envelope?.meta[META.ignoreResult] === true) throw new ResultIgnoredError(this.id);
    return resultOf<Result>(await waitForTerminalStatus(this.backend, this.id, options));
  }
}
