import { parseDuration, type Duration } from '../../sdk/duration.js';
import { ConfigError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { TaskOptions } from '../../sdk/task.js';
import type { WorkflowDefinition } from './define-workflow.js';
import { WorkflowEngine } from './workflow-engine.js';
import { Workflows } from './workflows.js';

export {
  advanceTaskName,
  defineWorkflow,
  type StepContext,
  type StepOptions,
  type WaitForEventOptions,
  type WorkflowContext,
  type WorkflowDefinition,
  type WorkflowFunction,
} from './define-workflow.js';
export type { AdvanceReport, WorkflowEngineOptions } from './workflow-engine.js';
export * from './workflow-errors.js';
export { CHILD_TASK_EVENT, WorkflowInterrupt } from './workflow-replay.js';
export { Workflows, WorkflowRunHandle, type StartWorkflowOptions, type WorkflowRunDetail } from './workflows.js';

/** Options of `workflows()`. */
export interface WorkflowsPluginOptions {
  /** The workflows this process starts or advances (every worker that runs their queues needs them). */
  definitions?: readonly WorkflowDefinition[];
  /** An advancing worker's lease on a run (default 30s); another worker replays the run once it ends unrenewed. */
  lease?: Duration;
  /** How long an event emitted before any run waits for it is kept for the first run that does (default 1d). */
  eventBufferTtl?: Duration;
  /**
   * Task options of every advance task (`wf.<name>`): queue, priority, visibilityTimeout (how soon an
   * advance whose worker died is redelivered), timeLimit. A definition's own queue wins.
   */
  advanceOptions?: TaskOptions;
}

/** The keys of {@link WorkflowsPluginOptions}. */
const WORKFLOWS_OPTION_KEYS = {
  definitions: true,
  lease: true,
  eventBufferTtl: true,
  advanceOptions: true,
} as const satisfies OptionKeys<WorkflowsPluginOptions>;

const instances = new WeakMap<Stem, Workflows>();

/**
 * Durable workflows: `workflows({ definitions: [order] })` registers each workflow's advance task
 * (`wf.<name>`), and `workflowsOf(stem)` starts, lists, cancels, rewinds runs and emits events.
 * Runs advance as ordinary tasks on the normal queues; their state lives in the workflowStore
 * service (memory by default; redis(), postgres() and sqlite() provide one). See docs/workflows.md.
 */
export function workflows(options: WorkflowsPluginOptions = {}): StemPlugin {
  assertKnownOptions('workflows()', options, WORKFLOWS_OPTION_KEYS);
  const leaseMs = parseDuration(options.lease ?? '30s', 'workflows(): option "lease"');
  const eventBufferTtlMs = parseDuration(options.eventBufferTtl ?? '1d', 'workflows(): option "eventBufferTtl"');
  if (!(leaseMs >= 100)) throw new ConfigError('workflows(): option "lease" must be at least 100ms');
  for (const definition of options.definitions ?? []) {
    if (typeof definition?.run !== 'function')
      throw new ConfigError('workflows(): every entry of "definitions" must come from defineWorkflow()');
  }
  let applied: Stem | undefined;
  return {
    name: 'workflows',
    apply(stem) {
      const engine = new WorkflowEngine(stem, { leaseMs, eventBufferTtlMs, advanceOptions: options.advanceOptions });
      for (const definition of options.definitions ?? []) engine.register(definition);
      stem.hooks.result.tapPromise('workflows', (outcome) => engine.childEnded(outcome));
      stem.hooks.ready.tap('workflows', () => {
        // A broker other processes share with runs kept in this process's memory: every other worker would lose them.
        if (stem.provides('broker') && !stem.provides('workflowStore')) {
          throw new ConfigError(
            'workflows(): the broker comes from a plugin but no plugin provides a workflow store, so runs would live in this ' +
              "process's memory; add redis({ url }) or postgres({ url }) (or redisWorkflowStore / postgresWorkflowStore) to the plugins",
          );
        }
      });
      instances.set(stem, new Workflows(engine));
      applied = stem;
    },
    async close() {
      if (applied !== undefined) instances.delete(applied);
      applied = undefined;
    },
  };
}

/** The workflow operations of a Stem created with `workflows()` in its plugins; throws ConfigError otherwise. */
export function workflowsOf(stem: Stem): Workflows {
  const found = instances.get(stem);
  if (found === undefined) {
    throw new ConfigError(
      'workflowsOf(stem): this Stem was created without the workflows plugin; add workflows({ definitions }) to its plugins ' +
        '(import { workflows } from "stem/plugins/workflows"), in workers too',
    );
  }
  return found;
}

/** Emits a workflow event from anywhere: `emit(stem, 'payment', orderId, { amount })`; returns the ids of the runs it reached. */
export function emit(stem: Stem, name: string, key: string, payload?: unknown): Promise<string[]> {
  return workflowsOf(stem).emit(name, key, payload);
}
