import { parseDuration, type Duration } from '../../sdk/duration.js';
import { ConfigError } from '../../sdk/errors.js';
import type { PoolLimits } from './child-pool.js';
import { moduleUrl } from './child-boot.js';

/** Options of `isolation()`. */
export interface IsolationOptions {
  /**
   * Run every task of the workers in this pool (`threads` or `processes`), not only those that say
   * `isolate`; a task with `isolate: 'none'` still runs on the worker's event loop.
   */
  pool?: 'threads' | 'processes';
  /** Modules searched for a task that names no `handlerModule` (paths from the working directory, or URLs). */
  modules?: Array<string | URL>;
  /** Modules each child imports before its first task: an OpenTelemetry SDK, a logger. */
  setup?: Array<string | URL>;
  /** Children kept started per mode in use, also when idle (default 1). */
  min?: number;
  /** Children at most per mode (default: the largest worker concurrency, at least 1). */
  max?: number;
  /** Replace a child after this many tasks (default: never). */
  maxTasksPerChild?: number;
  /** Replace a child after a task that left it above this: bytes or `'256MB'` (RSS of a process, heap of a thread; default: never). */
  maxMemoryPerChild?: number | string;
  /** How long an aborted task's handler may take to give up before its child is terminated (default 0: at once). */
  abortGrace?: Duration;
  /** Node options for the children (default: the worker's, without --inspect). */
  execArgv?: string[];
  /** A thread's V8 heap limit in MB; a thread over it dies and its task fails (resourceLimits.maxOldGenerationSizeMb). */
  threadHeapLimitMb?: number;
  /**
   * Prefix each line a task writes to stdout or stderr in its child (console.log, console.error)
   * with `name[id] `, as the worker's log lines name their task (default true; false leaves the
   * lines as written, e.g. for JSON lines).
   */
  tagOutput?: boolean;
}

/** The options, checked and resolved. */
export interface ResolvedIsolationOptions {
  pool: 'thread' | 'process' | undefined;
  modules: string[];
  setup: string[];
  limits: PoolLimits;
  /** True when `max` was given (otherwise it follows the workers' concurrency). */
  maxGiven: boolean;
  abortGraceMs: number;
  execArgv: string[] | undefined;
  threadHeapLimitMb: number | undefined;
  tagOutput: boolean;
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

/** Bytes from a number or a size such as `'256MB'`. */
export function parseBytes(value: number | string, where: string): number {
  if (typeof value === 'number' && value > 0) return value;
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value) : null;
  const unit = match ? UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new ConfigError(`${where} must be a positive number of bytes or a size such as "256MB" or "1GB" (got ${JSON.stringify(value)})`);
  }
  return Math.round(Number(match[1]) * unit);
}

function count(value: number | undefined, where: string, least: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < least)
    throw new ConfigError(`isolation: option "${where}" must be a whole number of ${least} or more (got ${JSON.stringify(value)})`);
  return value;
}

/** Checks `isolation()`'s options, naming the one that is wrong. */
export function resolveIsolationOptions(options: IsolationOptions): ResolvedIsolationOptions {
  if (options.pool !== undefined && options.pool !== 'threads' && options.pool !== 'processes') {
    throw new ConfigError(`isolation: option "pool" must be "threads" or "processes" (got ${JSON.stringify(options.pool)})`);
  }
  const min = count(options.min, 'min', 0) ?? 1;
  const max = count(options.max, 'max', 1);
  if (max !== undefined && max < min) throw new ConfigError(`isolation: option "max" (${max}) must not be below "min" (${min})`);
  const list = (value: Array<string | URL> | undefined, name: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new ConfigError(`isolation: option "${name}" must be an array of module paths or URLs`);
    return value.map((module, index) => moduleUrl(module, `isolation: option "${name}[${index}]"`));
  };
  if (options.execArgv !== undefined && !(Array.isArray(options.execArgv) && options.execArgv.every((arg) => typeof arg === 'string'))) {
    throw new ConfigError('isolation: option "execArgv" must be an array of strings');
  }
  if (options.tagOutput !== undefined && typeof options.tagOutput !== 'boolean') {
    throw new ConfigError(`isolation: option "tagOutput" must be true or false (got ${JSON.stringify(options.tagOutput)})`);
  }
  return {
    pool: options.pool === undefined ? undefined : options.pool === 'threads' ? 'thread' : 'process',
    modules: list(options.modules, 'modules'),
    setup: list(options.setup, 'setup'),
    limits: {
      min,
      max: max ?? Math.max(1, min),
      maxTasksPerChild: count(options.maxTasksPerChild, 'maxTasksPerChild', 1) ?? Number.POSITIVE_INFINITY,
      maxMemoryPerChild:
        options.maxMemoryPerChild === undefined
          ? Number.POSITIVE_INFINITY
          : parseBytes(options.maxMemoryPerChild, 'isolation: option "maxMemoryPerChild"'),
    },
    maxGiven: max !== undefined,
    abortGraceMs: parseDuration(options.abortGrace ?? 0, 'isolation: option "abortGrace"'),
    execArgv: options.execArgv,
    threadHeapLimitMb: count(options.threadHeapLimitMb, 'threadHeapLimitMb', 1),
    tagOutput: options.tagOutput ?? true,
  };
}
