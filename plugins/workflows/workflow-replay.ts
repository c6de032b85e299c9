import { createHash } from 'node:crypto';
import type { WorkflowCheckpoint, WorkflowCheckpointKind, WorkflowFailure, WorkflowRun } from '../../sdk/contracts/workflow-store.js';
import type { WorkflowStore } from '../../sdk/contracts/workflow-store.js';
import { parseDuration, type Duration } from '../../sdk/duration.js';
import { backoffDelay } from '../../sdk/retry-policy.js';
import type { EnqueueOptions, TaskContext, TaskDefinition } from '../../sdk/task.js';
import { toTaskError } from '../../sdk/task-error.js';
import type { StepContext, StepOptions, WaitForEventOptions, WorkflowContext, WorkflowDefinition } from './define-workflow.js';
import { WorkflowEventTimeoutError, WorkflowStepFailedError, WorkflowVersionMismatchError } from './workflow-errors.js';
import { assertValidEvent } from './event-address.js';

/** The event a child task's end is delivered as (key: the child's task id). */
export const CHILD_TASK_EVENT = 'stem.task';

/** The event a child workflow's end is delivered as (key: the child's run id). */
export const CHILD_WORKFLOW_EVENT = 'stem.workflow';

/** True for the id of a run started by `wf.child` (`<parent>.<rewinds>.<position>.child`). */
export function isChildRunId(id: string): boolean {
  return /\.\d+\.\d+\.child$/.test(id);
}

/** Envelope meta key marking a workflow's child task (value: the run id). */
export const CHILD_OF_META = 'stem.workflow.run';

/**
 * Thrown through the run function to stop this advance: the run suspended (or its lease was lost,
 * or a step asked for a retry). User code must let it pass: a `catch` that swallows it is detected.
 */
export class WorkflowInterrupt extends Error {
  constructor(
    readonly why: 'suspended' | 'lost' | 'retry',
    readonly delayMs = 0,
  ) {
    super(`workflow advance interrupted (${why}); rethrow this error from any catch around a durable call`);
    this.name = 'WorkflowInterrupt';
  }
}

/** What the replay needs from the engine. */
export interface ReplayHost {
  readonly store: WorkflowStore;
  /** Enqueues the run's next advance, due at `notBefore`, with an id derived from `reason`. */
  schedule(run: WorkflowRun, reason: string, notBefore?: number): Promise<void>;
  /** Starts a child run with this id once (an existing id is not started again). */
  startChild(id: string, workflow: WorkflowDefinition, input: unknown): Promise<void>;
  /** Enqueues a child task once (an id already known is not enqueued again). */
  enqueueChild(id: string, task: TaskDefinition | string, args: unknown, options?: EnqueueOptions): Promise<void>;
}

/** An error as a checkpoint keeps it. */
export function toFailure(error: unknown): WorkflowFailure {
  const taskError = toTaskError(error);
  return taskError.code === undefined
    ? { name: taskError.type, message: taskError.message }
    : { name: taskError.type, message: taskError.message, code: taskError.code };
}

/**
 * One advance of a run: the WorkflowContext its run function gets. Calls take positions in order;
 * a position with a checkpoint answers from it, the first one without runs (a step), or suspends
 * the run (a sleep not yet due, an event not yet emitted).
 */
export class WorkflowReplay implements WorkflowContext {
  readonly runId: string;
  readonly workflow: string;
  readonly version: number;
  /** Set once the advance stopped (suspended, lease lost, retry): later calls throw it again. */
  interrupt: WorkflowInterrupt | undefined;
  /** A store failure met inside a durable call: the advance is retried, whatever user code did with it. */
  failure: unknown;
  /** The replay stopped matching the checkpoints: the run fails, whatever user code did with it. */
  mismatch: WorkflowVersionMismatchError | undefined;
  private position = 0;
  private draws = 0;
  private readonly points: Map<number, WorkflowCheckpoint>;
  /** `now()` values not yet written: written before any side effect or suspension. */
  private pending: WorkflowCheckpoint[] = [];

  constructor(
    private readonly host: ReplayHost,
    private readonly run: WorkflowRun,
    checkpoints: readonly WorkflowCheckpoint[],
    private readonly owner: string,
    private readonly taskContext: TaskContext,
  ) {
    this.runId = run.id;
    this.workflow = run.workflow;
    this.version = run.version;
    this.points = new Map(checkpoints.map((point) => [point.position, point]));
  }

  /** How many positions the run function used. */
  get used(): number {
    return this.position;
  }

  /** Recorded positions the run function did not reach: a sign its code changed. */
  unreached(): WorkflowCheckpoint | undefined {
    for (const point of this.points.values()) if (point.position >= this.position) return point;
    return undefined;
  }

  async step<T>(name: string, fn: (step: StepContext) => T | Promise<T>, options: StepOptions = {}): Promise<Awaited<T>> {
    const at = this.next(name, 'step');
    const recorded = this.points.get(at);
    if (recorded !== undefined) return this.answer(recorded) as Awaited<T>;
    await this.flush();
    const startedAt = Date.now();
    let value: Awaited<T>;
    try {
      value = await fn({ attempt: this.taskContext.attempt, signal: this.taskContext.signal });
    } catch (error) {
      if (error instanceof WorkflowInterrupt) throw error;
      if (this.taskContext.signal.aborted) {
        // Shutdown or a time limit interrupted the step: not its failure. The advance ends with the
        // kernel's error (a shutdown returns the task to the queue) and the step runs again.
        this.failure ??= this.taskContext.signal.reason ?? error;
        throw error;
      }
      const maxRetries = options.retry?.maxRetries ?? 0;
      if (this.taskContext.attempt < maxRetries) {
        throw this.stop(new WorkflowInterrupt('retry', backoffDelay(options.retry, this.taskContext.attempt)));
      }
      const failed = await this.save({ position: at, name, kind: 'step', error: toFailure(error), startedAt, finishedAt: Date.now() });
      return this.answer(failed) as Awaited<T>;
    }
    const stored = await this.save({ position: at, name, kind: 'step', value: value ?? null, startedAt, finishedAt: Date.now() });
    return this.answer(stored) as Awaited<T>;
  }

  sleep(duration: Duration): Promise<void> {
    const ms = parseDuration(duration, 'wf.sleep');
    return this.sleepAt((now) => now + ms);
  }

  sleepUntil(when: Date | number | string): Promise<void> {
    const until = when instanceof Date ? when.getTime() : typeof when === 'number' ? when : Date.parse(when);
    if (!Number.isFinite(until)) throw new TypeError(`wf.sleepUntil: ${String(when)} is not a date, epoch ms or ISO time`);
    return this.sleepAt(() => until);
  }

  async waitForEvent<T = unknown>(name: string, options: WaitForEventOptions): Promise<T> {
    if (typeof options?.key !== 'string') throw new TypeError(`wf.waitForEvent("${name}"): option \`key\` must be a string`);
    assertValidEvent(name, options.key);
    const at = this.next(name, 'event');
    const recorded = this.points.get(at);
    if (recorded !== undefined) return this.eventAnswer(recorded, name, options.key) as T;
    const waiting = this.run.waiting;
    const deadline =
      waiting?.position === at
        ? waiting.deadline
        : options.timeout === undefined
          ? undefined
          : Date.now() + parseDuration(options.timeout, 'wf.waitForEvent timeout');
    if (deadline !== undefined && Date.now() >= deadline) {
      const timedOut = await this.save({ position: at, name, kind: 'event', timedOut: true, finishedAt: Date.now() });
      return this.eventAnswer(timedOut, name, options.key) as T;
    }
    const waiter = { event: name, key: options.key, position: at, step: name, kind: 'event' as const, deadline };
    if (deadline === undefined) delete waiter.deadline;
    return this.eventAnswer(await this.wait(waiter, deadline, `${at}.timeout`), name, options.key) as T;
  }

  async task<Args, Result>(task: TaskDefinition<Args, Result> | string, args: Args, options: EnqueueOptions = {}): Promise<Result> {
    const name = typeof task === 'string' ? task : task.name;
    const at = this.next(name, 'task');
    const recorded = this.points.get(at);
    if (recorded !== undefined) return this.childAnswer(recorded) as Result;
    await this.flush();
    const childId = `${this.runId}.${this.run.rewinds}.${at}`;
    await this.guard(() =>
      this.host.enqueueChild(childId, task as TaskDefinition | string, args, {
        ...options,
        meta: { ...options.meta, [CHILD_OF_META]: this.runId },
      }),
    );
    const waiter = { event: CHILD_TASK_EVENT, key: childId, position: at, step: name, kind: 'task' as const };
    return this.childAnswer(await this.wait(waiter, undefined, undefined)) as Result;
  }

  async child<Input, Output>(workflow: WorkflowDefinition<Input, Output>, input: Input): Promise<Output> {
    const at = this.next(workflow.name, 'workflow');
    const recorded = this.points.get(at);
    if (recorded !== undefined) return this.childAnswer(recorded) as Output;
    await this.flush();
    const childId = `${this.runId}.${this.run.rewinds}.${at}.child`;
    await this.guard(() => this.host.startChild(childId, workflow as WorkflowDefinition, input));
    const waiter = { event: CHILD_WORKFLOW_EVENT, key: childId, position: at, step: workflow.name, kind: 'workflow' as const };
    return this.childAnswer(await this.wait(waiter, undefined, undefined)) as Output;
  }

  now(): Date {
    const at = this.next('now', 'value');
    const recorded = this.points.get(at) ?? this.pending.find((point) => point.position === at);
    if (recorded !== undefined) return new Date(recorded.value as number);
    const now = Date.now();
    const point: WorkflowCheckpoint = { position: at, name: 'now', kind: 'value', value: now, finishedAt: now };
    this.pending.push(point);
    this.points.set(at, point);
    return new Date(now);
  }

  random(): number {
    return this.draw().readUIntBE(0, 6) / 2 ** 48;
  }

  uuid(): string {
    const bytes = this.draw();
    bytes[6] = (bytes[6]! & 0x0f) | 0x40;
    bytes[8] = (bytes[8]! & 0x3f) | 0x80;
    const hex = bytes.subarray(0, 16).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Writes the `now()` values taken since the last write (before a side effect, a suspension or the end). */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const point = this.pending.shift()!;
      await this.save(point);
    }
  }

  /** Marks the advance stopped and returns the interrupt to throw. */
  stop(interrupt: WorkflowInterrupt): WorkflowInterrupt {
    this.interrupt ??= interrupt;
    return this.interrupt;
  }

  /** The next position, after checking it still holds what the run recorded there. */
  private next(name: string, kind: WorkflowCheckpointKind): number {
    if (this.interrupt !== undefined) throw this.interrupt;
    const at = this.position++;
    const recorded = this.points.get(at);
    if (recorded !== undefined && (recorded.name !== name || recorded.kind !== kind)) {
      // Kept as well as thrown: the run fails with it even if user code catches it.
      this.mismatch ??= new WorkflowVersionMismatchError(this.runId, at, `${recorded.kind} "${recorded.name}"`, `${kind} "${name}"`);
      throw this.mismatch;
    }
    return at;
  }

  private async sleepAt(wakeTime: (now: number) => number): Promise<void> {
    const at = this.next('sleep', 'sleep');
    const recorded =
      this.points.get(at) ??
      (await this.save({ position: at, name: 'sleep', kind: 'sleep', value: { until: wakeTime(Date.now()) }, finishedAt: Date.now() }));
    const until = (recorded.value as { until: number }).until;
    if (Date.now() >= until) return;
    await this.flush();
    // The wake-up is enqueued before the run is marked sleeping: a crash in between leaves this
    // advance to be redelivered, never a sleeping run that nothing will wake.
    await this.guard(() => this.host.schedule(this.run, `${at}.wake`, until));
    const suspension = await this.guard(() => this.host.store.suspend(this.runId, this.owner, { wakeAt: until }, Date.now()));
    throw this.stop(new WorkflowInterrupt(suspension.suspended ? 'suspended' : 'lost'));
  }

  /** Suspends on `waiter` (waking at `deadline` if any) unless its event is already there; returns its checkpoint. */
  private async wait(
    waiter: Parameters<WorkflowStore['suspend']>[2]['waiter'] & {},
    deadline: number | undefined,
    reason: string | undefined,
  ) {
    await this.flush();
    if (deadline !== undefined && reason !== undefined) await this.guard(() => this.host.schedule(this.run, reason, deadline));
    const suspension = await this.guard(() => this.host.store.suspend(this.runId, this.owner, { waiter, wakeAt: deadline }, Date.now()));
    if (suspension.suspended) throw this.stop(new WorkflowInterrupt('suspended'));
    if ('lost' in suspension) throw this.stop(new WorkflowInterrupt('lost'));
    this.points.set(suspension.checkpoint.position, suspension.checkpoint);
    return suspension.checkpoint;
  }

  /** Saves a checkpoint under the lease; the stored one is returned (a lost lease stops the advance). */
  private async save(point: WorkflowCheckpoint): Promise<WorkflowCheckpoint> {
    const stored = await this.guard(() => this.host.store.saveCheckpoint(this.runId, point, this.owner, Date.now()));
    if (stored === null) throw this.stop(new WorkflowInterrupt('lost'));
    this.points.set(stored.position, stored);
    return stored;
  }

  /** Runs a store or broker call; its failure is kept so the advance is retried even if user code catches it. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      this.failure ??= error;
      throw error;
    }
  }

  private answer(point: WorkflowCheckpoint): unknown {
    if (point.error !== undefined) throw new WorkflowStepFailedError(point.name, point.error);
    return point.value;
  }

  private eventAnswer(point: WorkflowCheckpoint, name: string, key: string): unknown {
    if (point.timedOut === true) throw new WorkflowEventTimeoutError(name, key);
    return point.value;
  }

  private childAnswer(point: WorkflowCheckpoint): unknown {
    const outcome = point.value as { result?: unknown; error?: WorkflowFailure } | undefined;
    if (outcome?.error !== undefined) throw new WorkflowStepFailedError(point.name, outcome.error);
    return outcome?.result;
  }

  /** 32 bytes derived from the run id and how many draws came before: the same on every replay. */
  private draw(): Buffer {
    if (this.interrupt !== undefined) throw this.interrupt;
    return createHash('sha256')
      .update(`${this.runId}:${this.draws++}`)
      .digest();
  }
}
