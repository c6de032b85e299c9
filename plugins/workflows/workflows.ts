import { setTimeout as delay } from 'node:timers/promises';
import { isWorkflowFinal, type WorkflowCheckpoint, type WorkflowRun, type WorkflowRunFilter } from '../../sdk/contracts/workflow-store.js';
import { assertValidName } from '../../sdk/envelope.js';
import { uuidv7 } from '../../sdk/id.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { WorkflowDefinition } from './define-workflow.js';
import { assertValidEvent } from './event-address.js';
import type { WorkflowEngine } from './workflow-engine.js';
import { UnknownWorkflowRunError, UnknownWorkflowStepError, WorkflowRunFailedError, WorkflowWaitTimeoutError } from './workflow-errors.js';

/** Options of `start`. */
export interface StartWorkflowOptions {
  /** The run id (default: a new UUIDv7). Starting an id that exists starts nothing and returns it. */
  id?: string;
  /** The queue of its advance tasks (default: the definition's queue, else routing). */
  queue?: string;
}

/** The keys of {@link StartWorkflowOptions}. */
const START_WORKFLOW_OPTION_KEYS = { id: true, queue: true } as const satisfies OptionKeys<StartWorkflowOptions>;

/** A run with its checkpoints: what `stem wf show` prints. */
export interface WorkflowRunDetail {
  run: WorkflowRun;
  checkpoints: WorkflowCheckpoint[];
}

/** A started run: its id, and its result once it ends. */
export class WorkflowRunHandle<Output = unknown> {
  constructor(
    private readonly workflows: Workflows,
    /** The run id. */
    readonly id: string,
    /** False when a run with this id already existed. */
    readonly created: boolean,
  ) {}

  /** Waits for the run to end; resolves with its result, throws WorkflowRunFailedError when it failed or was cancelled. */
  async result(options: { timeoutMs?: number } = {}): Promise<Output> {
    const run = await this.workflows.wait(this.id, options);
    if (run.status === 'succeeded') return run.result as Output;
    throw new WorkflowRunFailedError(run.id, run.status as 'failed' | 'cancelled', run.error);
  }
}

/**
 * The operations on workflow runs, from any process with the plugin: start, get, list, cancel,
 * emit, rewind, wait. `workflowsOf(stem)` returns it. A run id no store can hold (empty, over 256
 * bytes, control characters) is an InvalidNameError before any store is asked.
 */
export class Workflows {
  constructor(private readonly engine: WorkflowEngine) {}

  /** Starts a run of a definition (typed) or of a registered workflow by name (its newest version). */
  async start<Input, Output>(
    workflow: WorkflowDefinition<Input, Output>,
    input: Input,
    options?: StartWorkflowOptions,
  ): Promise<WorkflowRunHandle<Output>>;
  async start(workflow: string, input?: unknown, options?: StartWorkflowOptions): Promise<WorkflowRunHandle>;
  async start(workflow: WorkflowDefinition | string, input: unknown = {}, options: StartWorkflowOptions = {}): Promise<WorkflowRunHandle> {
    assertKnownOptions('workflowsOf(stem).start()', options, START_WORKFLOW_OPTION_KEYS);
    if (options.id !== undefined) assertValidName('runId', options.id);
    const definition = typeof workflow === 'string' ? this.engine.definition(workflow) : workflow;
    if (typeof workflow !== 'string') this.engine.register(workflow);
    const queue = options.queue ?? definition.queue;
    const { run, created } = await this.engine.store.createRun(
      {
        id: options.id ?? uuidv7(),
        workflow: definition.name,
        version: definition.version,
        input,
        ...(queue === undefined ? {} : { queue }),
      },
      Date.now(),
    );
    // Enqueued on every start of the id: a starter that crashed after creating the run starts it by retrying.
    if (!isWorkflowFinal(run.status)) await this.engine.schedule(run, 'start');
    return new WorkflowRunHandle(this, run.id, created);
  }

  /** A handle on an existing run id. */
  handle<Output = unknown>(id: string): WorkflowRunHandle<Output> {
    assertValidName('runId', id);
    return new WorkflowRunHandle<Output>(this, id, false);
  }

  /** A run, or null. */
  async get(id: string): Promise<WorkflowRun | null> {
    assertValidName('runId', id);
    return this.engine.store.getRun(id);
  }

  /** A run and its checkpoints; throws UnknownWorkflowRunError. */
  async show(id: string): Promise<WorkflowRunDetail> {
    assertValidName('runId', id);
    const run = await this.engine.store.getRun(id);
    if (run === null) throw new UnknownWorkflowRunError(id);
    return { run, checkpoints: await this.engine.store.checkpoints(id) };
  }

  /** Runs, newest first. */
  list(filter: WorkflowRunFilter = {}): Promise<WorkflowRun[]> {
    return this.engine.store.listRuns(filter);
  }

  /** Cancels a run (an advance in flight stops at its next durable call); throws UnknownWorkflowRunError. */
  async cancel(id: string, reason = 'cancelled by request'): Promise<WorkflowRun> {
    assertValidName('runId', id);
    const before = await this.engine.store.getRun(id);
    const run = await this.engine.store.cancel(id, reason, Date.now());
    if (run === null) throw new UnknownWorkflowRunError(id);
    if (before !== null && !isWorkflowFinal(before.status) && run.status === 'cancelled') {
      await this.engine.childRunEnded(id, { error: run.error ?? { name: 'WorkflowCancelled', message: reason } });
    }
    return run;
  }

  /**
   * Emits an event: every run waiting on `(name, key)` receives `payload` and advances; with none
   * waiting, it is kept for the plugin's `eventBufferTtl` for the first run that waits. Returns the
   * ids of the runs it was delivered to.
   */
  async emit(name: string, key: string, payload: unknown = null): Promise<string[]> {
    assertValidEvent(name, key);
    return this.engine.deliver(name, key, payload);
  }

  /**
   * Re-runs a run from its first recorded step named `step`: that checkpoint and every later one are
   * deleted and the run advances again (a finished run too). Throws UnknownWorkflowStepError.
   */
  async rewind(id: string, step: string): Promise<WorkflowRun> {
    const { checkpoints } = await this.show(id);
    const target = checkpoints.find((point) => point.name === step);
    if (target === undefined) throw new UnknownWorkflowStepError(id, step, [...new Set(checkpoints.map((point) => point.name))]);
    const run = await this.engine.store.rewind(id, target.position, Date.now());
    if (run === null) throw new UnknownWorkflowRunError(id);
    await this.engine.schedule(run, 'rewind');
    return run;
  }

  /** Waits until the run reaches a final status and returns it (polling the store). */
  async wait(id: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<WorkflowRun> {
    assertValidName('runId', id);
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    let pause = 10;
    for (;;) {
      const run = await this.engine.store.getRun(id);
      if (run === null) throw new UnknownWorkflowRunError(id);
      if (isWorkflowFinal(run.status)) return run;
      if (Date.now() >= deadline) throw new WorkflowWaitTimeoutError(id, options.timeoutMs!, run.status);
      await delay(Math.min(pause, options.pollMs ?? 250, Math.max(1, deadline - Date.now())));
      pause *= 2;
    }
  }
}
