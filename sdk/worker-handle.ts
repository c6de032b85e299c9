import type { ScaleDecision } from './autoscaler.js';
import type { WorkerInfo } from './worker-options.js';

/** A worker's lifecycle. */
export type WorkerState = 'idle' | 'running' | 'stopping' | 'stopped';

/** Counters a worker reports in heartbeats and `stats()`. */
export interface WorkerStats {
  processed: number;
  succeeded: number;
  failed: number;
  retried: number;
  cancelled: number;
  inflight: number;
  reserved: number;
  concurrency: number;
  [key: string]: number;
}

/** A task a worker has fetched but not started. */
export interface ReservedTask {
  id: string;
  name: string;
  queue: string;
  attempt: number;
}

/** A task a worker runs now. */
export interface ActiveTask {
  id: string;
  name: string;
  /** Epoch ms its handler started. */
  startedAt: number;
  attempt: number;
}

/** How many tasks a worker runs now under one concurrency key of one queue (`stem worker stats`). */
export interface RunningKey {
  /** The queue the tasks came from. */
  queue: string;
  /** The concurrency key (`tenant-42`, or `task:<name>` for a task-wide limit). */
  key: string;
  /** Tasks of that key this worker runs now. */
  running: number;
}

/**
 * What the worker hooks (`dispatch`, `result`, `workerStart`, `workerStop`, `control`) hand a
 * plugin: what it may read of a running worker and what it may ask of it. Plugins take this, never
 * the Worker class, so that they need no downcast and a test can hand them a stand-in.
 */
export interface WorkerHandle extends WorkerInfo {
  /** The lifecycle state. */
  readonly state: WorkerState;
  /** The autoscaler's bounds and last decision, when the worker was given `autoscale`. */
  readonly autoscaler: { state(): { min: number; max: number; last?: ScaleDecision } } | undefined;
  /** Counters and gauges. */
  stats(): WorkerStats;
  /** How many tasks run now. */
  runningCount(): number;
  /** The deliveries fetched but not started yet. */
  reservedTasks(): ReservedTask[];
  /** The tasks running now. */
  activeTasks(): ActiveTask[];
  /** Optional: the tasks running now with a concurrency key, counted by queue and key (unkeyed ones are not listed). */
  runningKeys?(): RunningKey[];
  /** Aborts a running task (revoke with terminate); it ends cancelled. False when not running here. */
  terminate(taskId: string, reason?: string): boolean;
  /** Stops fetching from a queue this worker consumes until `resumeQueue`. False when not consumed here. */
  pauseQueue(queue: string): boolean;
  /** Fetches from a paused queue again. False when not consumed here. */
  resumeQueue(queue: string): boolean;
  /** The queues this worker consumes but has paused. */
  pausedQueues(): string[];
  /** Changes how many tasks run at once. */
  setConcurrency(concurrency: number): void;
  /** Stops the worker (see `Worker.stop`); `graceMs: 0` is a hard stop. */
  stop(options?: { graceMs?: number }): Promise<void>;
}
