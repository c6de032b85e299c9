import { parseDuration, type Duration } from './duration.js';
import { ConfigError } from './errors.js';
import type { WorkerOptions } from './worker-options.js';

/** The default of `maxArgsBytes`: 1 MiB. */
export const DEFAULT_MAX_ARGS_BYTES = 1024 * 1024;

/** The default of `maxRedeliveries`. */
export const DEFAULT_MAX_REDELIVERIES = 5;

/** The default control namespace. */
export const DEFAULT_NAMESPACE = 'stem';

/** Settings resolved from the config, with defaults applied: the one place producer, worker and plugins read them. */
export interface StemSettings {
  /** Queue of tasks that name none. */
  readonly defaultQueue: string;
  /** Result TTL in ms. */
  readonly resultTtlMs: number;
  /** Default delivery lease in ms. */
  readonly visibilityTimeoutMs: number;
  /** Whether enqueue records the queued state. */
  readonly trackQueued: boolean;
  /** Whether every state records the task's args (failed and cancelled states always do). */
  readonly extendedResults: boolean;
  /** Worker defaults. */
  readonly worker: WorkerOptions;
  /** The control namespace workers, revoke, rate-limit and control commands share. */
  readonly namespace: string;
  /** Largest task arguments accepted at enqueue, in bytes of their JSON. Read throws ConfigError when the config's is invalid. */
  readonly maxArgsBytes: number;
  /** Redeliveries a task survives before it is dead-lettered. Read throws ConfigError when the config's is invalid. */
  readonly maxRedeliveries: number;
}

/** Validates `maxArgsBytes` from the config; throws ConfigError naming it. */
export function resolveMaxArgsBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_ARGS_BYTES;
  if (value === Infinity || (typeof value === 'number' && Number.isInteger(value) && value > 0)) return value;
  throw new ConfigError(
    `maxArgsBytes ${JSON.stringify(value)} must be a whole number of bytes above 0 (default ${DEFAULT_MAX_ARGS_BYTES}, 1 MiB) or Infinity`,
  );
}

/** Validates `maxRedeliveries` from the config; throws ConfigError naming it. */
export function resolveMaxRedeliveries(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_REDELIVERIES;
  if (value === Infinity || (typeof value === 'number' && Number.isInteger(value) && value >= 0)) return value;
  throw new ConfigError(
    `maxRedeliveries ${JSON.stringify(value)} must be a whole number of 0 or more (default ${DEFAULT_MAX_REDELIVERIES}) or Infinity`,
  );
}

/** The config's control namespace when it names one, else `stem`. */
export function resolveNamespace(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : DEFAULT_NAMESPACE;
}

/** The fields of a StemConfig the settings come from (see sdk/config.ts for what each means). */
export interface SettingsSource {
  defaultQueue?: string;
  resultTtl?: Duration;
  visibilityTimeout?: Duration;
  trackQueued?: boolean;
  extendedResults?: boolean;
  worker?: WorkerOptions;
  namespace?: string;
  maxArgsBytes?: number;
  maxRedeliveries?: number;
}

/**
 * Resolves the settings of a config once. `maxArgsBytes` and `maxRedeliveries` are checked on
 * first read (and remembered): an invalid one fails the enqueue or `stem.worker()` that needs it,
 * not `Stem.create`, so a producer-only process is not stopped by a worker setting.
 */
export function resolveSettings(config: SettingsSource): StemSettings {
  let maxArgsBytes: number | undefined;
  let maxRedeliveries: number | undefined;
  return {
    defaultQueue: config.defaultQueue ?? 'default',
    resultTtlMs: parseDuration(config.resultTtl ?? '1d', 'resultTtl'),
    visibilityTimeoutMs: parseDuration(config.visibilityTimeout ?? '30s', 'visibilityTimeout'),
    trackQueued: config.trackQueued ?? true,
    extendedResults: config.extendedResults === true,
    worker: config.worker ?? {},
    namespace: resolveNamespace(config.namespace),
    get maxArgsBytes() {
      return (maxArgsBytes ??= resolveMaxArgsBytes(config.maxArgsBytes));
    },
    get maxRedeliveries() {
      return (maxRedeliveries ??= resolveMaxRedeliveries(config.maxRedeliveries));
    },
  };
}
