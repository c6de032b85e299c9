import { META } from '../../sdk/envelope.js';
import { ConfigError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { TaskDefinition } from '../../sdk/task.js';
import { bootScript, moduleUrl } from './child-boot.js';
import { ChildPool, type PoolStats } from './child-pool.js';
import type { IsolateMode } from './child-protocol.js';
import { inheritedExecArgv } from './isolated-child.js';
import { runIsolated } from './isolated-runner.js';
import { type IsolationOptions, resolveIsolationOptions } from './isolation-options.js';

export { type IsolationOptions, parseBytes } from './isolation-options.js';
export type { PoolStats } from './child-pool.js';
export type { IsolateMode } from './child-protocol.js';

declare module '../../sdk/task.js' {
  interface TaskOptions {
    /**
     * Run the handler in a worker thread or a child process of the isolation plugin's pool
     * (`'none'`: on the worker's event loop even under a worker-wide pool). The child imports the
     * task's `handlerModule` and calls the handler of the exported task with this name.
     */
    isolate?: 'thread' | 'process' | 'none';
    /** The module that exports this task, for an isolated child to import: usually `import.meta.url`. */
    handlerModule?: string | URL;
  }
}

/** The keys of {@link IsolationOptions}: what `isolation()` accepts. */
const ISOLATION_OPTION_KEYS = {
  pool: true,
  modules: true,
  setup: true,
  min: true,
  max: true,
  maxTasksPerChild: true,
  maxMemoryPerChild: true,
  abortGrace: true,
  execArgv: true,
  threadHeapLimitMb: true,
  tagOutput: true,
} as const satisfies OptionKeys<IsolationOptions>;

/** What `isolation()` returns: the plugin, and its pools' counters. */
export interface IsolationPlugin extends StemPlugin {
  /** Counters of each mode's pool (children started, recycled, crashed, terminated, their ids). */
  stats(): Partial<Record<IsolateMode, PoolStats>>;
}

/**
 * Handlers in their own worker threads or child processes: CPU-bound code cannot stall the
 * worker's event loop (leases, heartbeats and other tasks go on), a hard `timeLimit` terminates the
 * child that runs past it, a crash fails only its attempt, and children are recycled after
 * `maxTasksPerChild` tasks or above `maxMemoryPerChild`. A task opts in with `isolate` and names its
 * module with `handlerModule` (the child imports it by path); `pool` isolates every task.
 *
 * @example
 * export const crunch = defineTask({ name: 'cpu.crunch', options: { isolate: 'thread', handlerModule: import.meta.url, timeLimit:
 * '30s' }, handler });
 * Stem.create({ plugins: [isolation({ maxTasksPerChild: 100 })] });
 */
export function isolation(options: IsolationOptions = {}): IsolationPlugin {
  assertKnownOptions('isolation()', options, ISOLATION_OPTION_KEYS);
  const resolved = resolveIsolationOptions(options);
  const pools = new Map<IsolateMode, ChildPool>();
  let largestConcurrency = 1;
  const poolOf = (mode: IsolateMode): ChildPool => {
    let pool = pools.get(mode);
    if (pool === undefined) {
      const limits = { ...resolved.limits };
      if (!resolved.maxGiven) limits.max = Math.max(limits.min, largestConcurrency);
      const boot = { mode, setup: resolved.setup, modules: resolved.modules, tagOutput: resolved.tagOutput };
      pool = new ChildPool(mode, limits, () => ({
        mode,
        boot,
        // Per child: a task registered since the last one may have brought a TypeScript module (tsx then).
        script: bootScript([...resolved.setup, ...resolved.modules, ...taskModules.values()]),
        execArgv: resolved.execArgv ?? inheritedExecArgv(),
        maxOldGenerationSizeMb: resolved.threadHeapLimitMb,
      }));
      pools.set(mode, pool);
    }
    return pool;
  };
  /** Each isolated task's module URL, by task name (checked when the plugin is applied). */
  const taskModules = new Map<string, string>();
  const modeOf = (definition: TaskDefinition | undefined): IsolateMode | undefined => {
    const isolate = definition?.options.isolate;
    if (isolate === 'none') return undefined;
    if (isolate === 'thread' || isolate === 'process') return isolate;
    return resolved.pool;
  };
  const check = (definition: TaskDefinition): void => {
    const isolate = definition.options.isolate;
    if (isolate !== undefined && isolate !== 'thread' && isolate !== 'process' && isolate !== 'none') {
      throw new ConfigError(
        `task "${definition.name}": option "isolate" must be "thread", "process" or "none" (got ${JSON.stringify(isolate)})`,
      );
    }
    const module = definition.options.handlerModule;
    if (module !== undefined) taskModules.set(definition.name, moduleUrl(module, `task "${definition.name}": option "handlerModule"`));
    else if (modeOf(definition) !== undefined && resolved.modules.length === 0) {
      throw new ConfigError(
        `task "${definition.name}" runs isolated but names no module: its child imports the task by path, so set \`handlerModule: ` +
          `import.meta.url\` in the module that exports it, or list that module in isolation({ modules }) (stem worker start --pool ` +
          `passes its --registry module)`,
      );
    }
  };

  return {
    name: 'isolation',
    apply(stem: Stem) {
      for (const definition of stem.registry.list()) check(definition);
      // First (innermost) of the execute taps: the telemetry span and other wrappers stay on the
      // worker and wrap the isolated run.
      stem.hooks.execute.tap({ name: 'isolation', stage: -1000 }, (runner, ctx) => {
        const definition = stem.registry.find(ctx.name);
        const mode = modeOf(definition);
        if (mode === undefined || definition === undefined) return runner;
        if (!taskModules.has(definition.name) && definition.options.handlerModule !== undefined) check(definition);
        const module = taskModules.get(definition.name);
        const softLimit = definition.options.softTimeLimit !== undefined || ctx.meta[META.softTimeLimitMs] !== undefined;
        return (context) => runIsolated(poolOf(mode), context, module, resolved.abortGraceMs, softLimit);
      });
      stem.hooks.workerStart.tapPromise('isolation', async (worker) => {
        // An autoscaled worker may grow to its max: the pool follows the most it may run at once.
        largestConcurrency = Math.max(largestConcurrency, worker.concurrency, worker.stats().autoscaleMax ?? 0);
        for (const definition of stem.registry.list()) check(definition);
        for (const pool of pools.values()) if (!resolved.maxGiven) pool.limits.max = Math.max(pool.limits.min, largestConcurrency);
        const modes = new Set<IsolateMode>();
        for (const definition of stem.registry.list()) {
          const mode = modeOf(definition);
          if (mode !== undefined) modes.add(mode);
        }
        for (const mode of modes) poolOf(mode).warm();
      });
    },
    stats() {
      const stats: Partial<Record<IsolateMode, PoolStats>> = {};
      for (const [mode, pool] of pools) stats[mode] = pool.stats();
      return stats;
    },
    async close() {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      pools.clear();
    },
  };
}
