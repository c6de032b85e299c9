import type { Duration } from './duration.js';
import { assertKnownOptions, type OptionKeys } from './option-keys.js';

/** How a worker consumes. */
export interface WorkerOptions {
  /** Queues to consume (default: the config's defaultQueue). */
  queues?: string[];
  /** Broadcast channels to subscribe to. */
  broadcasts?: string[];
  /** Tasks run at once (default 8). */
  concurrency?: number;
  /** Deliveries reserved per slot beyond the running ones (default 1: none reserved beyond the slots). */
  prefetchMultiplier?: number;
  /** The worker id (default: hostname + pid + random). */
  id?: string;
  /** The host name reported in heartbeats (default: os.hostname()). */
  hostname?: string;
  /** How long a stop waits for running tasks before aborting them back to the queue (default 30s). */
  shutdownGrace?: Duration;
  /** How often the worker reports a heartbeat to the backend (default 10s). */
  heartbeatInterval?: Duration;
  /** Scale concurrency between min and max with the backlog (see sdk/autoscaler.ts). */
  autoscale?: AutoscaleOptions;
  /**
   * Publish task and worker events for `stem events` and `stem.events` (the events plugin, which the
   * CLI applies; in code add `events()` to the plugins). Default false; see docs/events.md.
   */
  events?: boolean;
}

/** Autoscaling bounds and pace. */
export interface AutoscaleOptions {
  /** Fewest tasks at once (the starting concurrency). */
  min: number;
  /** Most tasks at once. */
  max: number;
  /** Scale up when waiting tasks per slot exceed this (default 1). */
  backlogPerSlot?: number;
  /** Scale down after this long with no backlog and half the slots idle (default 30s). */
  idleAfter?: Duration;
  /** How often the backlog is checked (default 1s). */
  interval?: Duration;
  /** Least time between two scale-ups (default 2s). */
  upCooldown?: Duration;
}

/** The keys of {@link WorkerOptions}. */
const WORKER_OPTION_KEYS = {
  queues: true,
  broadcasts: true,
  concurrency: true,
  prefetchMultiplier: true,
  id: true,
  hostname: true,
  shutdownGrace: true,
  heartbeatInterval: true,
  autoscale: true,
  events: true,
} as const satisfies OptionKeys<WorkerOptions>;

/** The keys of {@link AutoscaleOptions}. */
const AUTOSCALE_OPTION_KEYS = {
  min: true,
  max: true,
  backlogPerSlot: true,
  idleAfter: true,
  interval: true,
  upCooldown: true,
} as const satisfies OptionKeys<AutoscaleOptions>;

/**
 * Throws ConfigError when worker options (or their `autoscale`) hold a key they do not have
 * (`concurency`), naming `where` (`stem.worker()`, the config file) and the nearest key.
 */
export function assertWorkerOptionKeys(options: unknown, where: string): void {
  assertKnownOptions(where, options, WORKER_OPTION_KEYS);
  const autoscale = (options as { autoscale?: unknown } | null | undefined)?.autoscale;
  assertKnownOptions(`${where}: option "autoscale"`, autoscale, AUTOSCALE_OPTION_KEYS);
}

/** What plugins see of a running worker. */
export interface WorkerInfo {
  /** The worker id. */
  readonly id: string;
  /** The host it runs on. */
  readonly hostname: string;
  /** The queues it consumes. */
  readonly queues: readonly string[];
  /** The broadcast channels it subscribes to. */
  readonly broadcasts: readonly string[];
  /** Tasks it runs at once. */
  readonly concurrency: number;
}
