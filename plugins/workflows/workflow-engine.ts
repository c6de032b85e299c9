import { randomUUID } from 'node:crypto';
import { isWorkflowFinal, type WorkflowFailure, type WorkflowRun, type WorkflowStore } from '../../sdk/contracts/workflow-store.js';
import { Retry } from '../../sdk/errors.js';
import type { Outcome } from '../../sdk/hooks.js';
import type { Stem } from '../../sdk/kernel.js';
import { defineTask, type EnqueueOptions, type TaskContext, type TaskDefinition, type TaskOptions } from '../../sdk/task.js';
import { advanceTaskName, type WorkflowDefinition } from './define-workflow.js';
import { UnknownWorkflowError, WorkflowVersionMismatchError } from './workflow-errors.js';
import {
  CHILD_OF_META,
  CHILD_TASK_EVENT,
  CHILD_WORKFLOW_EVENT,
  isChildRunId,
  toFailure,
  WorkflowInterrupt,
  WorkflowReplay,
  type ReplayHost,
} from './workflow-replay.js';

/** Resolved options of the engine. */
export interface WorkflowEngineOptions {
  /** How long an advancing worker's lease on a run lasts unless renewed (renewed every third of it). */
  leaseMs: number;
  /** How long an event emitted before anyone waits for it is kept. */
  eventBufferTtlMs: number;
  /** Task options of every advance task (a definition's queue wins). */
  advanceOptions?: TaskOptions;
}

/** What one advance did. */
export interface AdvanceReport {
  runId: string;
  /** The run's status afterwards, or why nothing ran (`missing`, `leased`, `lost`). */
  outcome: string;
}

/**
 * Advances runs: the handler of each workflow's advance task (`wf.<name>`). An advance claims the
 * run's lease, replays the run function from the top against the checkpoints, and ends when the run
 * suspends (its next advance enqueued first, with notBefore for timers), finishes or fails.
 */
export class WorkflowEngine implements ReplayHost {
  private readonly definitions = new Map<string, Map<number, WorkflowDefinition>>();

  constructor(
    private readonly stem: Stem,
    readonly options: WorkflowEngineOptions,
  ) {}

  /** The workflow store service. */
  get store(): WorkflowStore {
    return this.stem.service('workflowStore');
  }

  /** Registers a definition and its advance task (one task per workflow name). */
  register(definition: WorkflowDefinition): void {
    let versions = this.definitions.get(definition.name);
    if (versions === undefined) {
      this.definitions.set(definition.name, (versions = new Map()));
      this.stem.registry.register(this.advanceTask(definition));
    }
    versions.set(definition.version, definition);
  }

  /** The definition of `name` at `version` (default: its newest version). */
  definition(name: string, version?: number): WorkflowDefinition {
    const versions = this.definitions.get(name);
    const found =
      versions === undefined ? undefined : version === undefined ? versions.get(Math.max(...versions.keys())) : versions.get(version);
    if (found === undefined) throw new UnknownWorkflowError(name, version, this.names());
    return found;
  }

  /** Registered workflows as `name@version`. */
  names(): string[] {
    return [...this.definitions.entries()].flatMap(([name, versions]) => [...versions.keys()].map((v) => `${name}@${v}`)).sort();
  }

  /** Enqueues the run's advance task; its id derives from the cause, so a redo is the same task. */
  async schedule(run: WorkflowRun, reason: string, notBefore?: number): Promise<void> {
    const options: EnqueueOptions = { id: `${run.id}.${run.rewinds}.${reason}` };
    if (run.queue !== undefined) options.queue = run.queue;
    if (notBefore !== undefined && notBefore > Date.now()) options.notBefore = new Date(notBefore);
    await this.stem.enqueue(advanceTaskName(run.workflow), { runId: run.id }, options);
  }

  /** Enqueues a child task unless a task with its id is already known to the result backend. */
  async enqueueChild(id: string, task: TaskDefinition | string, args: unknown, options: EnqueueOptions = {}): Promise<void> {
    const known = await this.stem.status(id);
    if (known.state !== 'pending') return;
    await this.stem.enqueue(task as string, args, { ...options, id });
  }

  /** Starts a child run once: created with its id (an existing one is kept) and scheduled unless it ended. */
  async startChild(id: string, workflow: WorkflowDefinition, input: unknown): Promise<void> {
    this.register(workflow);
    const { run } = await this.store.createRun(
      { id, workflow: workflow.name, version: workflow.version, input, ...(workflow.queue === undefined ? {} : { queue: workflow.queue }) },
      Date.now(),
    );
    if (!isWorkflowFinal(run.status)) await this.schedule(run, 'start');
  }

  /** A child run ended (or was cancelled): its parent receives the outcome as an event. */
  async childRunEnded(runId: string, ending: { result: unknown } | { error: WorkflowFailure }): Promise<void> {
    if (isChildRunId(runId)) await this.deliver(CHILD_WORKFLOW_EVENT, runId, ending);
  }

  /** The result phase: a workflow's child task ended, so its event is emitted to the waiting run. */
  async childEnded(outcome: Outcome): Promise<void> {
    if (outcome.state === 'retried' || outcome.envelope.meta[CHILD_OF_META] === undefined) return;
    const error = outcome.error;
    const payload =
      outcome.state === 'succeeded'
        ? { result: outcome.result ?? null }
        : {
            error:
              error === undefined
                ? { name: 'TaskCancelled', message: outcome.reason ?? outcome.state }
                : { name: error.type, message: error.message },
          };
    await this.deliver(CHILD_TASK_EVENT, outcome.envelope.id, payload);
  }

  /** Emits an event and enqueues an advance of every run it was delivered to. */
  async deliver(event: string, key: string, payload: unknown): Promise<string[]> {
    const deliveries = await this.store.emit(event, key, payload, { now: Date.now(), bufferTtlMs: this.options.eventBufferTtlMs });
    await Promise.all(deliveries.map(({ run, checkpoint }) => this.schedule(run, `${checkpoint.position}.event`)));
    return deliveries.map(({ run }) => run.id);
  }

  /** One advance of a run (the advance task's handler). */
  async advance(runId: string, task: TaskContext): Promise<AdvanceReport> {
    const store = this.store;
    const owner = `${task.workerId}/${randomUUID()}`;
    const { leaseMs } = this.options;
    const claim = await store.claim(runId, owner, leaseMs, Date.now());
    if (!claim.claimed) {
      // Another advance holds the run: come back when its lease ends, in case it died holding it.
      if (claim.reason === 'leased') await this.schedule(claim.run, `lease.${randomUUID()}`, claim.run.lease!.until + 1);
      return { runId, outcome: claim.reason === 'missing' ? 'missing' : claim.reason === 'leased' ? 'leased' : claim.run.status };
    }
    const run = claim.run;
    let definition: WorkflowDefinition;
    try {
      definition = this.definition(run.workflow, run.version);
    } catch (error) {
      await store.finish(runId, owner, { status: 'failed', error: toFailure(error) }, Date.now());
      return { runId, outcome: 'failed' };
    }
    const replay = new WorkflowReplay(this, run, await store.checkpoints(runId), owner, task);
    const renewal = setInterval(
      () => {
        store.renew(runId, owner, leaseMs, Date.now()).then(
          (held) => {
            if (!held) replay.stop(new WorkflowInterrupt('lost'));
          },
          () => {},
        );
      },
      Math.max(50, Math.floor(leaseMs / 3)),
    );
    renewal.unref();
    try {
      let ending: { status: 'succeeded'; result: unknown } | { status: 'failed'; error: ReturnType<typeof toFailure> };
      try {
        const result = await definition.run(run.input, replay);
        if (replay.mismatch !== undefined) throw replay.mismatch;
        const unreached = replay.unreached();
        if (replay.interrupt === undefined && unreached !== undefined) {
          throw new WorkflowVersionMismatchError(runId, unreached.position, `${unreached.kind} "${unreached.name}"`, 'the end of the run');
        }
        ending = { status: 'succeeded', result: result ?? null };
      } catch (error) {
        if (replay.mismatch !== undefined && replay.failure === undefined) {
          ending = { status: 'failed', error: toFailure(replay.mismatch) };
        } else if (replay.interrupt === undefined && replay.failure === undefined && !(error instanceof WorkflowInterrupt)) {
          ending = { status: 'failed', error: toFailure(error) };
        } else {
          return await this.interrupted(replay, runId, owner, error);
        }
      }
      if (replay.failure !== undefined || (replay.interrupt !== undefined && replay.mismatch === undefined)) {
        return await this.interrupted(replay, runId, owner, undefined);
      }
      if (ending.status === 'succeeded') await replay.flush();
      // Told before the run is marked ended: a crash in between replays the run and tells it again
      // (the parent keeps the first), never leaves the parent waiting.
      await this.childRunEnded(runId, ending.status === 'succeeded' ? { result: ending.result } : { error: ending.error });
      const finished = await store.finish(runId, owner, ending, Date.now());
      return { runId, outcome: finished ? ending.status : 'lost' };
    } finally {
      clearInterval(renewal);
    }
  }

  /** The advance stopped without ending the run: suspended, lease lost, a step to retry, or a store failure. */
  private async interrupted(replay: WorkflowReplay, runId: string, owner: string, thrown: unknown): Promise<AdvanceReport> {
    const interrupt = replay.interrupt ?? (thrown instanceof WorkflowInterrupt ? thrown : undefined);
    if (replay.failure !== undefined) {
      await this.store.release(runId, owner, Date.now()).catch(() => {});
      throw replay.failure;
    }
    if (interrupt?.why === 'retry') {
      await this.store.release(runId, owner, Date.now());
      throw new Retry({ countdownMs: interrupt.delayMs, reason: 'a workflow step failed and will be retried' });
    }
    return { runId, outcome: interrupt?.why ?? 'suspended' };
  }

  /** The advance task of a workflow: retried with backoff when the store or broker fails mid-advance. */
  private advanceTask(definition: WorkflowDefinition): TaskDefinition<{ runId: string }, AdvanceReport> {
    return defineTask({
      name: advanceTaskName(definition.name),
      options: {
        maxRetries: 100,
        retryPolicy: { backoff: 'exponential', delayMs: 500, maxDelayMs: 30_000 },
        ...this.options.advanceOptions,
        ...(definition.queue === undefined ? {} : { queue: definition.queue }),
      },
      handler: (args: { runId: string }, ctx) => this.advance(args.runId, ctx),
    });
  }
}
