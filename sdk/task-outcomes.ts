import type { Broker } from './contracts/broker.js';
import type { TaskError, TaskState, TaskStatus } from './contracts/result-backend.js';
import type { CompletionBatch } from './completion-batch.js';
import { parseDuration } from './duration.js';
import { META, type Envelope } from './envelope.js';
import type { Outcome, StemHooks } from './hooks.js';
import type { TaskRegistry } from './registry.js';
import type { SignalName, SignalPayloads, Signals } from './signals.js';
import { generationOf } from './state-order.js';
import type { TaskRun } from './task-run.js';
import type { WorkerHandle } from './worker-handle.js';

/** What the outcomes of a worker's tasks need from it and its instance. */
export interface OutcomeHost {
  readonly hooks: StemHooks;
  readonly signals: Signals;
  readonly registry: TaskRegistry;
  readonly broker: Broker;
  readonly batch: CompletionBatch;
  /** The worker, as the result hook hands it to plugins. */
  readonly worker: WorkerHandle;
  /** The instance's result TTL in ms. */
  readonly resultTtlMs: number;
  /** Every state records the args (`extendedResults`); failed and cancelled states always do. */
  readonly extendedResults?: boolean;
}

/** The counters outcomes keep: `processed` counts every outcome but a cancel. */
export interface OutcomeCounters {
  processed: number;
  succeeded: number;
  failed: number;
  retried: number;
  cancelled: number;
}

/** One way an attempt ends: what the result hook is told, the state written, what the broker is told, the signal. */
interface Ending<S extends SignalName> {
  state: Outcome['state'];
  durationMs: number;
  hook: Partial<Outcome>;
  /** Built after the result hook ran, so that its `updatedAt` follows whatever the hook wrote. */
  status: () => TaskStatus;
  /**
   * Undefined: the state and the ack go with the next flush of the batch. Otherwise the state is
   * written first (so the next attempt's `running` cannot be overwritten by it), then this runs.
   */
  tell: (() => Promise<void>) | undefined;
  counter: Exclude<keyof OutcomeCounters, 'processed'>;
  signal: S;
  payload: () => SignalPayloads[S];
}

/** What `end` returns when nothing was waited for. */
const ENDED: Promise<void> = Promise.resolve();

/** `status` with what a retry needs (`stem.retry`): the args and the rest of the envelope. Off the hot path: final failures only. */
function withEnvelope(status: TaskStatus, envelope: Envelope): TaskStatus {
  const { args, ...recorded } = envelope;
  status.args = args;
  status.envelope = recorded;
  return status;
}

/**
 * How a task's attempt ends, in one path: run the result hook, record the state, tell the broker,
 * count, emit the signal. The worker decides which outcome applies; this does the steps.
 */
export class TaskOutcomes {
  /** Counted outcomes, reported by the worker's stats. */
  readonly counters: OutcomeCounters = { processed: 0, succeeded: 0, failed: 0, retried: 0, cancelled: 0 };

  constructor(private readonly host: OutcomeHost) {}

  /** The handler returned `result`: the state and the ack go with the next flush. */
  succeeded(run: TaskRun, result: unknown, durationMs: number): Promise<void> {
    return this.end(run, {
      state: 'succeeded',
      durationMs,
      hook: { result },
      status: () => {
        const status = this.statusOf(run, 'succeeded', { result });
        if (run.lastProgress !== undefined) status.progress = run.lastProgress;
        return status;
      },
      tell: undefined,
      counter: 'succeeded',
      signal: 'task-succeeded',
      payload: () => ({ envelope: run.envelope, workerId: this.host.worker.id, result, durationMs }),
    });
  }

  /** Another attempt is queued after `delayMs`. */
  retried(run: TaskRun, error: TaskError, delayMs: number, durationMs: number): Promise<void> {
    const envelope = run.envelope;
    return this.end(run, {
      state: 'retried',
      durationMs,
      hook: { error, retryDelayMs: delayMs },
      status: () => this.statusOf(run, 'retried', { error }),
      tell: () => this.host.broker.nack(run.delivery, { requeue: true, delayMs, envelope: { ...envelope, attempt: envelope.attempt + 1 } }),
      counter: 'retried',
      signal: 'task-retried',
      payload: () => ({ envelope, workerId: this.host.worker.id, error, delayMs }),
    });
  }

  /** The task failed for good: dead-lettered for `reason`, with `meta` for the dead letter. */
  failed(run: TaskRun, reason: string, error: TaskError, durationMs: number, meta: Record<string, unknown> = {}): Promise<void> {
    const envelope = run.envelope;
    const workerId = this.host.worker.id;
    return this.end(run, {
      state: 'failed',
      durationMs,
      hook: { error, reason },
      status: () => withEnvelope(this.statusOf(run, 'failed', { error, meta: { reason } }), envelope),
      tell: () => this.host.broker.deadLetter(run.delivery, reason, { ...meta, error, attempt: envelope.attempt, workerId }),
      counter: 'failed',
      signal: 'task-failed',
      payload: () => ({ envelope, workerId, error, reason, durationMs }),
    });
  }

  /** The task was cancelled (revoked, expired, a dispatch verdict): the state and the ack go with the next flush. */
  cancelled(run: TaskRun, reason: string): Promise<void> {
    const error = { type: 'TaskCancelledError', message: reason };
    return this.end(run, {
      state: 'cancelled',
      durationMs: run.startedAt ? Date.now() - run.startedAt : 0,
      hook: { error, reason },
      status: () => withEnvelope(this.statusOf(run, 'cancelled', { error }), run.envelope),
      tell: undefined,
      counter: 'cancelled',
      signal: 'task-cancelled',
      payload: () => ({ envelope: run.envelope, workerId: this.host.worker.id, reason }),
    });
  }

  /** A state of this run's attempt (and generation), written by this worker now. */
  statusOf(run: TaskRun, state: TaskState, fields: Partial<TaskStatus> = {}): TaskStatus {
    const envelope = run.envelope;
    const status: TaskStatus = {
      id: envelope.id,
      state,
      name: envelope.name,
      queue: envelope.queue,
      attempt: envelope.attempt,
      workerId: this.host.worker.id,
      updatedAt: Date.now(),
      ...fields,
    };
    const generation = generationOf(envelope.meta);
    if (generation > 0) status.generation = generation;
    if (this.host.extendedResults === true) status.args = envelope.args;
    return status;
  }

  /** Queues a state write of this run with the next flush, unless its task ignores results. */
  record(run: TaskRun, status: TaskStatus): void {
    const ttlMs = this.stateTtlOf(run);
    if (ttlMs !== undefined) this.host.batch.record(status, ttlMs);
  }

  /**
   * How long this run's states are kept (the enqueue's `resultTtl`, else the task's, else the
   * instance's), or undefined when none is written (`ignoreResult`: the enqueue's, else the task's).
   * One registry lookup: it runs for every state a task writes.
   */
  stateTtlOf(run: TaskRun): number | undefined {
    const meta = run.meta;
    const options = this.host.registry.find(run.name)?.options;
    const asked = meta[META.ignoreResult];
    if (typeof asked === 'boolean' ? asked : options?.ignoreResult === true) return undefined;
    const override = meta[META.resultTtlMs] as number | undefined;
    if (override !== undefined) return override;
    const ttl = options?.resultTtl;
    return ttl === undefined ? this.host.resultTtlMs : parseDuration(ttl, 'resultTtl');
  }

  private end<S extends SignalName>(run: TaskRun, ending: Ending<S>): Promise<void> {
    if (this.host.hooks.result.isUsed() || ending.tell !== undefined) return this.endAwaiting(run, ending);
    // The usual success: nothing to wait for, so no async function (a promise fewer per task).
    const ttlMs = this.stateTtlOf(run);
    if (ttlMs !== undefined) this.host.batch.record(ending.status(), ttlMs);
    this.host.batch.ack(run.delivery);
    this.counted(ending);
    return ENDED;
  }

  /** `end` with a result hook to run or a broker call to wait for. */
  private async endAwaiting<S extends SignalName>(run: TaskRun, ending: Ending<S>): Promise<void> {
    const { hooks, batch } = this.host;
    if (hooks.result.isUsed()) {
      const outcome: Outcome = {
        envelope: run.envelope,
        delivery: run.delivery,
        worker: this.host.worker,
        state: ending.state,
        startedAt: run.startedAt,
        durationMs: ending.durationMs,
        ...ending.hook,
      };
      await hooks.result.promise(outcome);
    }
    const ttlMs = this.stateTtlOf(run);
    if (ttlMs !== undefined) batch.record(ending.status(), ttlMs);
    if (ending.tell === undefined) {
      batch.ack(run.delivery);
    } else {
      // Flushed now: it replaces this attempt's `running` still waiting in the batch, which would
      // otherwise be written after it and leave a failed task reading as running.
      await batch.flush();
      await ending.tell();
    }
    this.counted(ending);
  }

  private counted<S extends SignalName>(ending: Ending<S>): void {
    if (ending.counter !== 'cancelled') this.counters.processed++;
    this.counters[ending.counter]++;
    const signals = this.host.signals;
    if (signals.has(ending.signal)) signals.emit(ending.signal, ending.payload());
  }
}
