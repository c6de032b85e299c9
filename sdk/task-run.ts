import type { Delivery } from './contracts/broker.js';
import type { Envelope } from './envelope.js';
import type { EnqueueOptions, TaskContext, TaskDefinition } from './task.js';
import type { TaskHandle } from './task-handle.js';
import { taskScope } from './task-fault-trap.js';

/** What a TaskRun needs from its worker. */
export interface TaskRunHost {
  readonly id: string;
  reportProgress(run: TaskRun, value: unknown): Promise<void>;
  renewLease(run: TaskRun): Promise<void>;
  enqueueChild(task: TaskDefinition | string, args: unknown, options?: EnqueueOptions): Promise<TaskHandle<any>>;
}

/** How a run's handler settled. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown; aborted: boolean };

const NEVER_ABORTED = new AbortController().signal;

/** True for a promise or any other object with a `then` method (a handler may return either). */
function isThenable(value: unknown): boolean {
  return (
    value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * One attempt of one task on a worker; it is also the handler's `ctx`. Abort controllers are
 * made only when someone reads `ctx.signal` or a limit needs them, to keep no-op tasks cheap.
 */
export class TaskRun implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly attempt: number;
  readonly maxRetries: number;
  readonly queue: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly envelope: Envelope;
  readonly workerId: string;
  /** When the handler started (epoch ms). */
  startedAt = 0;
  /** The last progress value reported. */
  lastProgress: unknown;
  private controller: AbortController | undefined;
  private softController: AbortController | undefined;
  private resolveSettled: ((settled: Settled) => void) | undefined;
  private timers: NodeJS.Timeout[] | undefined;

  constructor(
    readonly delivery: Delivery,
    private readonly host: TaskRunHost,
  ) {
    const envelope = delivery.envelope;
    this.envelope = envelope;
    this.id = envelope.id;
    this.name = envelope.name;
    this.attempt = envelope.attempt;
    this.maxRetries = envelope.maxRetries;
    this.queue = delivery.queue;
    this.headers = envelope.headers;
    this.meta = envelope.meta;
    this.workerId = host.id;
  }

  /** Aborted on hard time limit, revoke-terminate and shutdown. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  /** Aborted when the soft time limit passes. */
  get softSignal(): AbortSignal {
    return this.softController?.signal ?? NEVER_ABORTED;
  }

  /** Records progress. */
  progress(value: unknown): Promise<void> {
    this.lastProgress = value;
    return this.host.reportProgress(this, value);
  }

  /** Renews this task's lease now. */
  heartbeat(): Promise<void> {
    return this.host.renewLease(this);
  }

  /** Enqueues a child task. */
  enqueue<Args, Result>(task: TaskDefinition<Args, Result> | string, args: Args, options?: EnqueueOptions): Promise<TaskHandle<Result>> {
    return this.host.enqueueChild(task as TaskDefinition | string, args, options);
  }

  /**
   * Starts the runner and resolves when it settles or the run is aborted, whichever is first. The
   * runner may return a value, a promise or throw: a synchronous outcome settles the run at once.
   */
  execute(
    runner: (ctx: TaskContext) => unknown,
    limits: { softMs?: number; hardMs?: number; softReason?: () => Error; hardReason?: () => Error },
  ): Promise<Settled> {
    return new Promise<Settled>((resolve) => {
      this.resolveSettled = resolve;
      if (limits.softMs !== undefined && limits.softReason) {
        this.softController = new AbortController();
        const soft = this.softController;
        const reason = limits.softReason;
        (this.timers ??= []).push(setTimeout(() => soft.abort(reason()), limits.softMs));
      }
      if (limits.hardMs !== undefined && limits.hardReason) {
        const reason = limits.hardReason;
        (this.timers ??= []).push(setTimeout(() => this.abort(reason()), limits.hardMs));
      }
      this.startedAt = Date.now();
      try {
        // In the task's async context: an error escaping a callback it scheduled names this run.
        const running = taskScope.run(this, runner, this);
        if (!isThenable(running)) {
          this.settle({ ok: true, value: running });
          return;
        }
        (running as PromiseLike<unknown>).then(
          (value) => this.settle({ ok: true, value }),
          (error: unknown) => this.settle({ ok: false, error, aborted: false }),
        );
      } catch (error) {
        this.settle({ ok: false, error, aborted: false });
      }
    });
  }

  /** Aborts the run: `ctx.signal` fires with `reason`, and the run settles as aborted at once. */
  abort(reason: Error): void {
    if (this.resolveSettled === undefined) return;
    (this.controller ??= new AbortController()).abort(reason);
    this.settle({ ok: false, error: reason, aborted: true });
  }

  /**
   * Fails the run with an error its code raised outside the promise it returned (caught at
   * process level): `ctx.signal` fires so the handler can stop, and the run settles as failed.
   * False when the run had already settled.
   */
  fault(error: Error): boolean {
    if (this.resolveSettled === undefined) return false;
    (this.controller ??= new AbortController()).abort(error);
    this.settle({ ok: false, error, aborted: false });
    return true;
  }

  private settle(settled: Settled): void {
    const resolve = this.resolveSettled;
    if (resolve === undefined) return;
    this.resolveSettled = undefined;
    if (this.timers) for (const timer of this.timers) clearTimeout(timer);
    resolve(settled);
  }
}
