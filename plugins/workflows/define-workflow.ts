import type { Duration } from '../../sdk/duration.js';
import type { RetryPolicy } from '../../sdk/retry-policy.js';
import type { EnqueueOptions, TaskDefinition } from '../../sdk/task.js';

/** Options of one `wf.step`. */
export interface StepOptions {
  /**
   * How a failing step is retried: `maxRetries` more attempts, spaced by the policy's backoff (the
   * run's advance task is retried durably, no process waits). Exhausted: the step throws
   * WorkflowStepFailedError into the run function, and so on every replay.
   */
  retry?: RetryPolicy;
}

/** What a step's function receives. */
export interface StepContext {
  /** 0 on the step's first attempt. */
  readonly attempt: number;
  /** Aborted when the worker shuts down or the advance's time limit passes. */
  readonly signal: AbortSignal;
}

/** Options of `wf.waitForEvent`. */
export interface WaitForEventOptions {
  /** Picks this run's event among all of the name, e.g. an order id. */
  key: string;
  /** Give up after this long (e.g. `3d`): the wait throws WorkflowEventTimeoutError. None: wait for ever. */
  timeout?: Duration;
}

/**
 * What a workflow's run function receives: its durable calls. Each call takes the next position
 * of the run; a replay must make the same calls in the same order (see docs/workflows.md).
 */
export interface WorkflowContext {
  /** The run id. */
  readonly runId: string;
  /** The workflow name. */
  readonly workflow: string;
  /** The definition version the run is pinned to. */
  readonly version: number;
  /** Runs `fn` once per run and checkpoints its (JSON) result; a replay returns the checkpoint. */
  step<T>(name: string, fn: (step: StepContext) => T | Promise<T>, options?: StepOptions): Promise<Awaited<T>>;
  /** Suspends the run for `duration` (`3d`, `2s`, ms): durable, no process waits. */
  sleep(duration: Duration): Promise<void>;
  /** Suspends the run until `when` (a Date, epoch ms or an ISO time). */
  sleepUntil(when: Date | number | string): Promise<void>;
  /**
   * Suspends until an event `(name, key)` is emitted (`workflowsOf(stem).emit(name, key, payload)`),
   * and returns its payload. An event emitted before the run waits is buffered and delivered.
   */
  waitForEvent<T = unknown>(name: string, options: WaitForEventOptions): Promise<T>;
  /** Enqueues a child task once per run and suspends until it ends; returns its result (throws WorkflowStepFailedError if it failed). */
  task<Args, Result>(task: TaskDefinition<Args, Result> | string, args: Args, options?: EnqueueOptions): Promise<Result>;
  /**
   * Starts a child run of `workflow` once per run and suspends until it ends; returns its result
   * (throws WorkflowStepFailedError if it failed or was cancelled). Workers need its definition too.
   */
  child<Input, Output>(workflow: WorkflowDefinition<Input, Output>, input: Input): Promise<Output>;
  /** The time, recorded on first call and the same on every replay. */
  now(): Date;
  /** A number in [0, 1), the same on every replay (derived from the run id and the call's order). */
  random(): number;
  /** A UUID (v4 layout), the same on every replay. */
  uuid(): string;
}

/** A workflow's run function: input in, a JSON result out. */
export type WorkflowFunction<Input, Output> = (input: Input, wf: WorkflowContext) => Promise<Output>;

/** A declared workflow. The type parameters carry Input and Output to `start`. */
export interface WorkflowDefinition<Input = any, Output = unknown> {
  /** The unique workflow name, e.g. `orders.fulfil`. */
  readonly name: string;
  /** The code's version (default 1): runs stay on the version they started with. */
  readonly version: number;
  /** The queue its advance tasks go to (default: routing, or the default queue). */
  readonly queue?: string;
  /** The run function. */
  readonly run: WorkflowFunction<Input, Output>;
}

/**
 * Declares a workflow; Input and Output are inferred from `run`.
 * @example
 * export const order = defineWorkflow({
 *   name: 'orders.fulfil',
 *   run: async (input: { id: string }, wf) => wf.step('charge', () => charge(input.id)),
 * });
 */
export function defineWorkflow<Input, Output>(definition: {
  name: string;
  version?: number;
  queue?: string;
  run: WorkflowFunction<Input, Output>;
}): WorkflowDefinition<Input, Awaited<Output>> {
  if (typeof definition.name !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(definition.name)) {
    throw new TypeError(
      'defineWorkflow: `name` must be a non-empty string of letters, digits, ".", "_", ":" or "-", such as "orders.fulfil"',
    );
  }
  const version = definition.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new TypeError(`defineWorkflow("${definition.name}"): \`version\` must be a positive integer`);
  }
  if (typeof definition.run !== 'function') throw new TypeError(`defineWorkflow("${definition.name}"): \`run\` must be an async function`);
  return Object.freeze({
    name: definition.name,
    version,
    ...(definition.queue === undefined ? {} : { queue: definition.queue }),
    run: definition.run as WorkflowFunction<Input, Awaited<Output>>,
  });
}

/** The task name a workflow's runs advance under: routing, rate limits and revokes see this name. */
export function advanceTaskName(workflow: string): string {
  return `wf.${workflow}`;
}
