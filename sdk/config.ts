import type { Duration } from './duration.js';
import { assertKnownOptions, type OptionKeys } from './option-keys.js';
import type { StemPlugin } from './plugin.js';
import type { TaskDefinition } from './task.js';
import { assertWorkerOptionKeys, type WorkerOptions } from './worker-options.js';

/** What `Stem.create` and `stem.config.ts` take. */
export interface StemConfig {
  /** Plugins, applied in order. Services no plugin provides fall back to in-memory ones. */
  plugins?: StemPlugin[];
  /** Tasks this process knows (producers may leave it empty and enqueue by name). */
  tasks?: TaskDefinition[];
  /** The queue of tasks that name none (default `default`). */
  defaultQueue?: string;
  /** How long results are kept (default 1 day). */
  resultTtl?: Duration;
  /** Default lease of a delivery (default 30s); renewed while the task runs. */
  visibilityTimeout?: Duration;
  /** Defaults for workers made by `stem.worker()` and `stem worker start`. */
  worker?: WorkerOptions;
  /** Record the `queued` state at enqueue (default true); off saves a write per task. */
  trackQueued?: boolean;
  /**
   * Record the task's args on every state (queued, running, retried, succeeded), like Celery's
   * `result_extended` (default false: only failed and cancelled states carry them, with the
   * envelope a retry needs, so the hot path writes nothing more).
   */
  extendedResults?: boolean;
  /** Largest task arguments accepted at enqueue, in bytes of their JSON (default 1 MiB); larger ones are refused. */
  maxArgsBytes?: number;
  /**
   * Redeliveries (worker died, lease ran out) a task survives before it is dead-lettered as `redelivery-limit` (default 5;
   * `Infinity`: no limit).
   */
  maxRedeliveries?: number;
  /** The control namespace workers and `stem worker …` commands share (default `stem`). */
  namespace?: string;
  /** Extra CLI commands (clipanion Command classes) the project contributes. */
  commands?: ReadonlyArray<new () => unknown>;
}

/** Declares a configuration with type checking; returns it unchanged. */
export function defineConfig<T extends StemConfig>(config: T): T {
  return config;
}

/** The keys of {@link StemConfig}: what `Stem.create()` takes. */
const STEM_CONFIG_KEYS = {
  plugins: true,
  tasks: true,
  defaultQueue: true,
  resultTtl: true,
  visibilityTimeout: true,
  worker: true,
  trackQueued: true,
  extendedResults: true,
  maxArgsBytes: true,
  maxRedeliveries: true,
  namespace: true,
  commands: true,
} as const satisfies OptionKeys<StemConfig>;

/**
 * What `loadConfig()` (stem/config) adds to the config it resolves, for `stem config print`:
 * `Stem.create(await loadConfig())` passes them, and the kernel ignores them.
 */
const LOADED_CONFIG_KEYS: ReadonlySet<string> = new Set(['configPath', 'urls', 'routingConfig']);

/** Throws ConfigError when `config` (or its `worker`) holds a key StemConfig does not have (`plugin` for `plugins`), naming the nearest. */
export function assertStemConfigKeys(config: StemConfig, where = 'Stem.create()'): void {
  if (typeof config !== 'object' || config === null) return;
  const own = Object.fromEntries(Object.entries(config).filter(([key]) => !LOADED_CONFIG_KEYS.has(key)));
  assertKnownOptions(where, own, STEM_CONFIG_KEYS);
  assertWorkerOptionKeys(config.worker, `${where}: option "worker"`);
}
