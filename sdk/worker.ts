import { AsyncResource } from 'node:async_hooks';
import { hostname as osHostname } from 'node:os';
import { assertWorkerConcurrencySupported, concurrencyKeyOf } from './concurrency-key.js';
import type { Broker, BrokerConsumer, Delivery } from './contracts/broker.js';
import type { ResultBackend, TaskStatus } from './contracts/result-backend.js';
import { generationOf, nextGeneration } from './state-order.js';
import { claimWorkerId, releaseWorkerId } from './worker-id-guard.js';
import { Autoscaler } from './autoscaler.js';
import { CompletionBatch, encodingProblem } from './completion-batch.js';
import { META } from './envelope.js';
import { parseDuration } from './duration.js';
import {
  ConfigError,
  ProgressNotSerializableError,
  RedeliveryLimitError,
  ResultNotSerializableError,
  SoftTimeLimitExceededError,
  StateNotWritableError,
  TaskAsyncError,
  TaskCancelledError,
  TimeLimitExceededError,
  UnknownTaskError,
  WorkerShutdownError,
} from './errors.js';
import type { StemHooks, Verdict } from './hooks.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { TaskRegistry } from './registry.js';
import type { StemSettings } from './settings.js';
import type { Signals } from './signals.js';
import { decideRetry, type RetryPolicy } from './retry-policy.js';
import type { EnqueueOptions, TaskContext, TaskDefinition } from './task.js';
import type { TaskHandle } from './task-handle.js';
import { toTaskError } from './task-error.js';
import { TaskOutcomes } from './task-outcomes.js';
import { TaskRun, type Settled, type TaskRunHost } from './task-run.js';
import { faultTrap, type FaultTrapHost } from './task-fault-trap.js';
import { uuidv7 } from './id.js';
import type { ActiveTask, ReservedTask, RunningKey, WorkerHandle, WorkerState, WorkerStats } from './worker-handle.js';
import type { WorkerOptions } from './worker-options.js';

const FETCH_RETRY_MS = 500;

/**
 * Envelope meta of a task that was running when its process died of an error no task could be
 * blamed for: how many times that happened. Such a suspect runs alone (see `pump`).
 */
const SHARED_CRASHES = 'stem.sharedCrashes';

/** What a worker uses of its Stem instance. */
export interface WorkerHost {
  readonly hooks: StemHooks;
  readonly signals: Signals;
  readonly registry: TaskRegistry;
  readonly settings: StemSettings;
  readonly broker: Broker;
  readonly backend: ResultBackend;
  /** Enqueues a task a handler asked for (`ctx.enqueue`). */
  enqueue(task: string, args: unknown, options?: EnqueueOptions): Promise<TaskHandle<any>>;
}

/**
 * Consumes queues and runs tasks: fetches batches sized to its free slots, renews leases while
 * tasks run, retries with backoff, dead-letters what cannot run, and on stop returns unfinished
 * work to the queue so nothing is lost.
 */
export class Worker implements WorkerHandle, TaskRunHost, FaultTrapHost {
  readonly id: string;
  readonly hostname: string;
  readonly queues: readonly string[];
  readonly broadcasts: readonly string[];
  private concurrencyLimit: number;
  private readonly prefetchMultiplier: number;
  private readonly shutdownGraceMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxRedeliveries: number;
  private readonly active = new Set<TaskRun>();
  private reserved: Delivery[] = [];
  private lifecycle: WorkerState = 'idle';
  private consumer: BrokerConsumer | undefined;
  private readonly paused = new Set<string>();
  private consumerStale = false;
  private fetchAbort = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();
  private roomWaiter: (() => void) | undefined;
  private drainWaiter: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private endGrace: (() => void) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly stoppedListeners: Array<() => void> = [];
  private readonly batch: CompletionBatch;
  private readonly leases: LeaseKeeper;
  /** The autoscaler, when the worker was given `autoscale`. */
  readonly autoscaler: Autoscaler | undefined;
  private readonly outcomes: TaskOutcomes;
  private startedAt = 0;
  /** A suspect running alone: nothing else starts until it ends. */
  private soloRun: TaskRun | undefined;
  /** The process is dying: tasks given back now are marked as suspects. */
  private crashing = false;
  /** Failures of tasks whose state the backend refused, still being written. */
  private readonly refusals = new Set<Promise<void>>();

  constructor(
    private readonly stem: WorkerHost,
    options: WorkerOptions,
  ) {
    this.hostname = options.hostname ?? osHostname();
    this.id = options.id ?? `${this.hostname}-${process.pid}-${uuidv7().slice(-6)}`;
    this.queues = options.queues && options.queues.length > 0 ? [...options.queues] : [stem.settings.defaultQueue];
    this.broadcasts = [...(options.broadcasts ?? [])];
    this.concurrencyLimit = options.concurrency ?? 8;
    this.prefetchMultiplier = options.prefetchMultiplier ?? 1;
    if (!Number.isInteger(this.concurrencyLimit) || this.concurrencyLimit < 1) {
      throw new ConfigError(`worker concurrency ${JSON.stringify(options.concurrency)} must be a whole number of 1 or more`);
    }
    if (!(this.prefetchMultiplier >= 1)) {
      throw new ConfigError(`worker prefetchMultiplier ${JSON.stringify(options.prefetchMultiplier)} must be 1 or more`);
    }
    this.shutdownGraceMs = parseDuration(options.shutdownGrace ?? '30s', 'shutdownGrace');
    this.heartbeatIntervalMs = parseDuration(options.heartbeatInterval ?? '10s', 'heartbeatInterval');
    this.maxRedeliveries = stem.settings.maxRedeliveries;
    const warn = (message: string): void => process.emitWarning(`worker ${this.id}: ${message}`, 'StemWorkerWarning');
    this.batch = new CompletionBatch(stem.broker, stem.backend, stem.settings.resultTtlMs, warn, (status, error, delivery) =>
      this.stateRefused(status, error, delivery),
    );
    this.leases = new LeaseKeeper(stem.broker, warn);
    this.outcomes = new TaskOutcomes({
      hooks: stem.hooks,
      signals: stem.signals,
      registry: stem.registry,
      get broker() {
        return stem.broker;
      },
      batch: this.batch,
      worker: this,
      resultTtlMs: stem.settings.resultTtlMs,
      extendedResults: stem.settings.extendedResults,
    });
    if (options.autoscale) {
      this.autoscaler = new Autoscaler(options.autoscale, stem.broker, this, (decision) => {
        if (stem.signals.has('worker-scaled'))
          stem.signals.emit('worker-scaled', { workerId: this.id, from: decision.from, to: decision.to, reason: decision.reason });
      });
      this.concurrencyLimit = this.autoscaler.initialConcurrency;
    }
  }

  /** How many tasks run now. */
  runningCount(): number {
    return this.active.size;
  }

  /** Tasks run at once. */
  get concurrency(): number {
    return this.concurrencyLimit;
  }

  /** The lifecycle state. */
  get state(): WorkerState {
    return this.lifecycle;
  }

  /** Changes how many tasks run at once (the autoscaler and remote control use this). */
  setConcurrency(concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new ConfigError(`concurrency ${concurrency} must be a whole number of 1 or more`);
    this.concurrencyLimit = concurrency;
    this.pump();
    this.wakeLoop();
  }

  /** Counters and gauges. */
  stats(): WorkerStats {
    const stats: WorkerStats = {
      ...this.outcomes.counters,
      inflight: this.active.size,
      reserved: this.reserved.length,
      concurrency: this.concurrencyLimit,
      uptimeMs: this.startedAt ? Date.now() - this.startedAt : 0,
    };
    if (this.autoscaler) {
      const { min, max } = this.autoscaler.state();
      stats.autoscaleMin = min;
      stats.autoscaleMax = max;
    }
    return stats;
  }

  /** The queues this worker consumes but has paused (see `pauseQueue`). */
  pausedQueues(): string[] {
    return this.queues.filter((queue) => this.paused.has(queue));
  }

  /**
   * Stops fetching from `queue` (one this worker consumes) until `resumeQueue`: deliveries of it
   * already reserved go back to the queue; running ones finish. False when not consumed here.
   */
  pauseQueue(queue: string): boolean {
    if (!this.queues.includes(queue)) return false;
    if (!this.paused.has(queue)) {
      this.paused.add(queue);
      this.refreshConsumer();
    }
    return true;
  }

  /** Fetches from a paused queue again. False when `queue` is not consumed here. */
  resumeQueue(queue: string): boolean {
    if (!this.queues.includes(queue)) return false;
    if (this.paused.delete(queue)) this.refreshConsumer();
    return true;
  }

  /** The deliveries fetched but not started yet. */
  reservedTasks(): ReservedTask[] {
    return this.reserved.map(({ envelope, queue }) => ({ id: envelope.id, name: envelope.name, queue, attempt: envelope.attempt }));
  }

  /** The envelopes of the tasks running now. */
  activeTasks(): ActiveTask[] {
    return [...this.active].map((run) => ({ id: run.id, name: run.name, startedAt: run.startedAt, attempt: run.attempt }));
  }

  /** The tasks running now with a concurrency key, counted by queue and key, sorted. */
  runningKeys(): RunningKey[] {
    const counts = new Map<string, RunningKey>();
    for (const run of this.active) {
      const keyed = concurrencyKeyOf(run.delivery.envelope);
      if (keyed === undefined) continue;
      const id = `${run.delivery.queue}\n${keyed.key}`;
      const entry = counts.get(id);
      if (entry === undefined) counts.set(id, { queue: run.delivery.queue, key: keyed.key, running: 1 });
      else entry.running++;
    }
    return [...counts.values()].sort((a, b) => (a.queue === b.queue ? (a.key < b.key ? -1 : 1) : a.queue < b.queue ? -1 : 1));
  }

  /** Registers a consumer and starts fetching. */
  async start(): Promise<void> {
    if (this.lifecycle !== 'idle') {
      // stop() first is kept, not undone by a later start(): a shutdown that came during setup wins.
      const why = this.startedAt === 0 ? 'was stopped before it started' : 'was already started';
      throw new ConfigError(`worker ${this.id} ${why}; create a new worker with stem.worker()`);
    }
    // A keyed task the broker cannot enforce would run unlimited: refused before anything starts.
    assertWorkerConcurrencySupported(this.stem.broker, this.stem.registry.list());
    this.lifecycle = 'running';
    this.startedAt = Date.now();
    // Refused while another worker runs with this id: it would share its consumer id and subscriptions.
    await claimWorkerId(this.stem.backend, this.id).catch((error: unknown) => {
      this.lifecycle = 'idle';
      this.startedAt = 0;
      throw error;
    });
    this.consumer = await this.stem.broker.consumer({ queues: this.queues, broadcasts: this.broadcasts, consumerId: this.id });
    // Only while a worker runs: an error a handler throws asynchronously fails its task, not the process.
    faultTrap.attach(this);
    if (this.stem.hooks.workerStart.isUsed()) await this.stem.hooks.workerStart.promise(this);
    this.loopDone = this.consumeLoop();
    this.startHeartbeats();
    this.autoscaler?.start();
    this.stem.signals.emit('worker-ready', {
      workerId: this.id,
      hostname: this.hostname,
      queues: this.queues,
      broadcasts: this.broadcasts,
    });
  }

  /** Calls `listener` once the worker has stopped. */
  onStopped(listener: () => void): void {
    this.stoppedListeners.push(listener);
  }

  /**
   * Stops fetching, waits up to the grace period for running tasks, then aborts the rest and
   * returns them (and reserved ones) to their queue. `graceMs: 0` is a hard stop.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.lifecycle === 'idle') {
      this.lifecycle = 'stopped';
      return Promise.resolve();
    }
    if (this.stopping !== undefined) {
      if (options.graceMs === 0) this.endGrace?.();
      return this.stopping;
    }
    this.stopping = this.shutdown(options.graceMs ?? this.shutdownGraceMs);
    return this.stopping;
  }

  /** Aborts a running task (revoke with terminate); it ends cancelled. False when not running here. */
  terminate(taskId: string, reason = 'revoked'): boolean {
    let found = false;
    for (const run of this.active) {
      if (run.id === taskId) {
        run.abort(new TaskCancelledError(taskId, reason));
        found = true;
      }
    }
    return found;
  }

  // FaultTrapHost

  /** @internal */
  soleSuspect(): TaskRun | undefined {
    return this.soloRun !== undefined && this.active.size === 1 ? this.soloRun : undefined;
  }

  /**
   * @internal The process must die (an error no task can be blamed for): stops fetching and
   * gives every task back as a new message at once, so that none counts it as a redelivery.
   */
  async abandon(): Promise<void> {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'stopping') return;
    this.crashing = true;
    this.lifecycle = 'stopping';
    clearInterval(this.heartbeatTimer);
    this.autoscaler?.stop();
    this.fetchAbort.abort();
    this.wakeLoop();
    const unstarted = this.reserved;
    this.reserved = [];
    const drained = this.active.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.drainWaiter = resolve));
    for (const run of this.active) run.abort(new WorkerShutdownError());
    await Promise.all([...unstarted.map((delivery) => this.giveBack(delivery)), drained]);
    await this.batch.flush();
  }

  // TaskRunHost

  /** @internal */
  async reportProgress(run: TaskRun, value: unknown): Promise<void> {
    const problem = encodingProblem(value);
    if (problem !== undefined) throw new ProgressNotSerializableError(run.id, problem);
    this.outcomes.record(run, this.runningStatus(run, value));
  }

  /** @internal */
  async renewLease(run: TaskRun): Promise<void> {
    await this.leases.renew([run.delivery]);
  }

  /** @internal */
  enqueueChild(task: TaskDefinition | string, args: unknown, options?: EnqueueOptions): Promise<TaskHandle<any>> {
    return this.stem.enqueue(task as string, args, options);
  }

  // The consume loop

  private async consumeLoop(): Promise<void> {
    let consumer = this.consumer;
    while (this.lifecycle === 'running') {
      if (this.consumerStale) {
        consumer = await this.reopenConsumer();
        continue;
      }
      if (consumer === undefined) {
        // Every queue is paused and there is no broadcast to read: sleep until a resume or a stop.
        await new Promise<void>((resolve) => (this.roomWaiter = resolve));
        continue;
      }
      const room = this.concurrencyLimit * this.prefetchMultiplier - this.active.size - this.reserved.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.roomWaiter = resolve));
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await consumer.fetch(room, this.fetchAbort.signal);
      } catch (error) {
        if (this.lifecycle !== 'running') break;
        if (this.consumerStale) continue;
        process.emitWarning(`worker ${this.id}: fetch failed (${(error as Error).message}); retrying`, 'StemWorkerWarning');
        await new Promise((resolve) => setTimeout(resolve, FETCH_RETRY_MS));
        continue;
      }
      for (const delivery of deliveries) {
        this.leases.track(delivery);
        this.reserved.push(delivery);
      }
      this.pump();
    }
  }

  /** Makes the loop swap its consumer for one without the paused queues. */
  private refreshConsumer(): void {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'idle') return;
    this.consumerStale = true;
    this.fetchAbort.abort();
    this.wakeLoop();
  }

  private async reopenConsumer(): Promise<BrokerConsumer | undefined> {
    this.consumerStale = false;
    // A fresh signal before any await: a stop that comes meanwhile aborts this one.
    this.fetchAbort = new AbortController();
    const old = this.consumer;
    this.consumer = undefined;
    await old?.close().catch(() => undefined);
    const held = this.reserved.filter((delivery) => this.paused.has(delivery.queue));
    if (held.length > 0) {
      this.reserved = this.reserved.filter((delivery) => !this.paused.has(delivery.queue));
      for (const delivery of held) this.leases.release(delivery);
      await Promise.all(held.map((delivery) => this.giveBack(delivery)));
    }
    const queues = this.queues.filter((queue) => !this.paused.has(queue));
    if (queues.length === 0 && this.broadcasts.length === 0) return undefined;
    if (this.lifecycle !== 'running') return undefined;
    this.consumer = await this.stem.broker.consumer({ queues, broadcasts: this.broadcasts, consumerId: this.id });
    return this.consumer;
  }

  private wakeLoop(): void {
    const wake = this.roomWaiter;
    if (wake) {
      this.roomWaiter = undefined;
      wake();
    }
  }

  private pump(): void {
    while (
      this.active.size < this.concurrencyLimit &&
      this.reserved.length > 0 &&
      this.lifecycle === 'running' &&
      this.soloRun === undefined
    ) {
      const suspect = this.reserved[0]!.envelope.meta[SHARED_CRASHES] !== undefined;
      // A suspect waits for the running tasks to end and then runs alone, so that an error no
      // task context names can be laid at its door rather than kill the process again.
      if (suspect && this.active.size > 0) return;
      const delivery = this.reserved.shift()!;
      const run = new TaskRun(delivery, this);
      if (suspect) this.soloRun = run;
      this.active.add(run);
      // process() catches what it can; then() rather than finally(): two promises fewer per task.
      const done = (): void => this.finished(run);
      void this.process(run).then(done, done);
    }
  }

  private finished(run: TaskRun): void {
    this.active.delete(run);
    if (this.soloRun === run) this.soloRun = undefined;
    this.leases.release(run.delivery);
    if (this.active.size === 0 && this.drainWaiter) this.drainWaiter();
    this.pump();
    this.wakeLoop();
  }

  // One delivery, from dispatch to outcome

  private async process(run: TaskRun): Promise<void> {
    const { delivery } = run;
    const envelope = delivery.envelope;
    const signals = this.stem.signals;
    if (signals.has('task-received')) signals.emit('task-received', { envelope, workerId: this.id });
    try {
      // A message that keeps killing its worker (or losing its lease) is set aside before it runs again.
      if (delivery.redeliveries > this.maxRedeliveries) {
        const error = toTaskError(new RedeliveryLimitError(envelope.id, delivery.redeliveries, this.maxRedeliveries));
        await this.outcomes.failed(run, 'redelivery-limit', error, 0, {
          redeliveries: delivery.redeliveries,
          maxRedeliveries: this.maxRedeliveries,
        });
        return;
      }
      const definition = this.stem.registry.find(envelope.name);
      if (definition === undefined) {
        await this.outcomes.failed(
          run,
          'unregistered-task',
          toTaskError(new UnknownTaskError(envelope.name, this.stem.registry.names())),
          0,
        );
        return;
      }
      if (envelope.expiresAt !== undefined && envelope.expiresAt <= Date.now()) {
        await this.outcomes.cancelled(run, 'expired: not started before its expiresAt');
        return;
      }
      if (this.stem.hooks.dispatch.isUsed()) {
        const verdict = await this.stem.hooks.dispatch.promise(delivery, this);
        if (verdict !== undefined && verdict.action !== 'run') {
          await this.applyVerdict(run, verdict);
          return;
        }
      }
      await this.execute(run, definition);
    } catch (error) {
      // A broker or backend call failed: leave the delivery to be redelivered when its lease ends.
      process.emitWarning(
        `worker ${this.id}: task ${envelope.id} could not be completed (${(error as Error).message}); it will be redelivered`,
        'StemWorkerWarning',
      );
    }
  }

  private async applyVerdict(run: TaskRun, verdict: Exclude<Verdict, { action: 'run' }>): Promise<void> {
    switch (verdict.action) {
      case 'defer':
        // Sent again as a new message: a deferral is not a redelivery and never counts toward maxRedeliveries.
        await this.stem.broker.nack(run.delivery, { requeue: true, delayMs: verdict.delayMs, envelope: run.envelope });
        return;
      case 'cancel':
        await this.outcomes.cancelled(run, verdict.reason);
        return;
      case 'reject':
        await this.outcomes.failed(run, verdict.reason, { type: 'Rejected', message: verdict.reason }, 0, verdict.meta);
        return;
    }
  }

  private async execute(run: TaskRun, definition: TaskDefinition): Promise<void> {
    const envelope = run.envelope;
    const meta = envelope.meta;
    const hooks = this.stem.hooks;
    const signals = this.stem.signals;
    const hardMs = (meta[META.timeLimitMs] as number | undefined) ?? optionalDuration(definition.options.timeLimit, 'timeLimit');
    const softMs =
      (meta[META.softTimeLimitMs] as number | undefined) ?? optionalDuration(definition.options.softTimeLimit, 'softTimeLimit');
    this.outcomes.record(run, this.runningStatus(run, undefined));
    if (signals.has('task-started')) signals.emit('task-started', { envelope, workerId: this.id });

    const handler = definition.handler;
    // Without execute taps the handler is called as it is (no async wrapper: a promise fewer per
    // task); TaskRun.execute takes a value or a promise, and a synchronous throw, alike.
    let runner: (ctx: TaskContext) => unknown = (ctx: TaskContext) => handler(envelope.args, ctx);
    // With execute taps, the result phase runs in the async context the handler ran in, so a
    // context an execute tap set (a trace span, a logger's store) also covers what result taps do.
    let handlerScope: AsyncResource | undefined;
    if (hooks.execute.isUsed()) {
      runner = hooks.execute.call(async (ctx: TaskContext) => {
        handlerScope = new AsyncResource('StemTaskHandler');
        return handler(envelope.args, ctx);
      }, run);
    }
    const settled = await run.execute(runner, {
      hardMs,
      softMs,
      hardReason: hardMs === undefined ? undefined : () => new TimeLimitExceededError(hardMs),
      softReason: softMs === undefined ? undefined : () => new SoftTimeLimitExceededError(softMs),
    });
    await (handlerScope === undefined
      ? this.conclude(run, definition, settled)
      : handlerScope.runInAsyncScope(() => this.conclude(run, definition, settled)));
  }

  private async conclude(run: TaskRun, definition: TaskDefinition, settled: Settled): Promise<void> {
    const durationMs = run.startedAt > 0 ? Date.now() - run.startedAt : 0;
    if (settled.ok) {
      // Checked before the result enters the batch: a value JSON cannot encode fails this task
      // alone, where it would otherwise fail the state write of every task flushed with it.
      const problem = encodingProblem(settled.value);
      if (problem === undefined) {
        await this.outcomes.succeeded(run, settled.value, durationMs);
        return;
      }
      settled = { ok: false, error: new ResultNotSerializableError(run.id, run.name, problem), aborted: false };
    }
    const error = settled.error;
    if (settled.aborted && error instanceof WorkerShutdownError) {
      await this.returnToQueue(run);
      return;
    }
    if (settled.aborted && error instanceof TaskCancelledError) {
      await this.outcomes.cancelled(run, error.reason);
      return;
    }
    const policy = (run.meta[META.retryPolicy] as RetryPolicy | undefined) ?? definition.options.retryPolicy;
    // The policy judges what the handler threw, also when it escaped asynchronously.
    const decision = decideRetry(error instanceof TaskAsyncError ? error.cause : error, run.attempt, run.maxRetries, policy);
    const taskError = toTaskError(error);
    if (decision.retry) {
      await this.outcomes.retried(run, taskError, decision.delayMs, durationMs);
    } else {
      // A result the worker could not store is named as the reason, not as a run of exhausted retries.
      const reason = error instanceof ResultNotSerializableError || error instanceof StateNotWritableError ? error.code : decision.reason;
      await this.outcomes.failed(run, reason, taskError, durationMs);
    }
  }

  private async returnToQueue(run: TaskRun): Promise<void> {
    // Sent back on purpose: the next generation of the same attempt, so its `queued` passes the
    // `running` this attempt wrote, and as a new message, so the return is not a redelivery.
    const returned = nextGeneration(run.envelope);
    const { workerId: _worker, ...queued } = this.outcomes.statusOf(run, 'queued');
    queued.generation = generationOf(returned.meta);
    this.outcomes.record(run, queued);
    await this.batch.flush();
    if (this.crashing) {
      // It was running when the process had to die of an error nobody could be blamed for: it
      // goes back marked as a suspect that will run alone.
      const shared = Number(returned.meta[SHARED_CRASHES] ?? 0) + 1;
      returned.meta = { ...returned.meta, [SHARED_CRASHES]: shared };
    }
    await this.stem.broker.nack(run.delivery, { requeue: true, envelope: returned });
  }

  /** A state the backend refused alone: a final one whose ack was withheld fails its task; others are only reported. */
  private stateRefused(status: TaskStatus, error: Error, delivery: Delivery | undefined): void {
    if (delivery === undefined) {
      process.emitWarning(
        `worker ${this.id}: the result backend refused the "${status.state}" state of task ${status.id} (${error.message}); the ` +
          `task goes on`,
        'StemWorkerWarning',
      );
      return;
    }
    const problem = encodingProblem(status);
    const failure =
      problem !== undefined
        ? new ResultNotSerializableError(status.id, status.name ?? delivery.envelope.name, problem, { cause: error })
        : new StateNotWritableError(status.id, status.state, error.message, { cause: error });
    const run = new TaskRun(delivery, this);
    const definition = this.stem.registry.find(delivery.envelope.name);
    const failing = (
      definition === undefined
        ? this.outcomes.failed(run, failure.code, toTaskError(failure), 0)
        : this.conclude(run, definition, { ok: false, error: failure, aborted: false })
    )
      .catch((cause: Error) =>
        process.emitWarning(
          `worker ${this.id}: task ${status.id} could not be failed (${cause.message}); it will be redelivered`,
          'StemWorkerWarning',
        ),
      )
      .finally(() => this.refusals.delete(failing));
    this.refusals.add(failing);
  }

  /** Returns a delivery that never started; as a new message, so that it does not count as a redelivery. */
  private giveBack(delivery: Delivery): Promise<void> {
    return this.stem.broker.nack(delivery, { requeue: true, envelope: delivery.envelope }).catch(() => undefined);
  }

  private runningStatus(run: TaskRun, progress: unknown): TaskStatus {
    const status = this.outcomes.statusOf(run, 'running');
    if (progress !== undefined) status.progress = progress;
    return status;
  }

  // Heartbeats and shutdown

  private startHeartbeats(): void {
    const beat = (): void => {
      const stats = this.stats();
      void this.stem.backend
        .heartbeat(
          {
            workerId: this.id,
            hostname: this.hostname,
            pid: process.pid,
            queues: [...this.queues],
            startedAt: this.startedAt,
            at: Date.now(),
            stats,
          },
          this.heartbeatIntervalMs * 3,
        )
        .catch((error: Error) => process.emitWarning(`worker ${this.id}: heartbeat failed (${error.message})`, 'StemWorkerWarning'));
      if (this.stem.signals.has('worker-heartbeat')) this.stem.signals.emit('worker-heartbeat', { workerId: this.id, stats });
    };
    beat();
    this.heartbeatTimer = setInterval(beat, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.lifecycle = 'stopping';
    this.stem.signals.emit('worker-stopping', { workerId: this.id, inflight: this.active.size });
    clearInterval(this.heartbeatTimer);
    this.autoscaler?.stop();
    this.fetchAbort.abort();
    this.wakeLoop();
    await this.loopDone;
    const unstarted = this.reserved;
    this.reserved = [];
    await Promise.all(unstarted.map((delivery) => this.giveBack(delivery)));
    if (this.active.size > 0) {
      const drained = new Promise<void>((resolve) => (this.drainWaiter = resolve));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        this.endGrace = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([drained, graceOver]);
      clearTimeout(timer);
      if (this.active.size > 0) {
        const aborted = new Promise<void>((resolve) => (this.drainWaiter = resolve));
        for (const run of this.active) run.abort(new WorkerShutdownError());
        await aborted;
      }
    }
    await this.batch.flush();
    while (this.refusals.size > 0) await Promise.all([...this.refusals]);
    await this.batch.flush();
    this.leases.stop();
    await this.consumer?.close().catch(() => undefined);
    faultTrap.detach(this);
    if (this.stem.hooks.workerStop.isUsed()) await this.stem.hooks.workerStop.promise(this);
    releaseWorkerId(this.stem.backend, this.id);
    this.lifecycle = 'stopped';
    this.stem.signals.emit('worker-shutdown', { workerId: this.id });
    for (const listener of this.stoppedListeners) listener();
  }
}

function optionalDuration(value: string | number | undefined, where: string): number | undefined {
  return value === undefined ? undefined : parseDuration(value, where);
}
