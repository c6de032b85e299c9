/**
 * The store of durable workflows (plugins/workflows): runs, their checkpoints, the waiter a run
 * suspended on, and events emitted before anyone waited for them. Every method that changes a run
 * is atomic in the store (memory: one synchronous block; Redis: one Lua script; Postgres and
 * SQLite: one transaction), so an emit, a timer, a cancel and an advancing worker may race freely.
 */

/** Where a run stands. `sleeping` and `waiting` are suspended: no worker holds them. */
export type WorkflowRunStatus = 'running' | 'sleeping' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

/** The statuses a run never leaves (except by rewind). */
export const WORKFLOW_FINAL_STATUSES: readonly WorkflowRunStatus[] = ['succeeded', 'failed', 'cancelled'];

/** True for succeeded, failed and cancelled. */
export function isWorkflowFinal(status: WorkflowRunStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** What a checkpoint records: a step's result, a sleep's wake time, an event, a child task's or child workflow's result, a replayed value. */
export type WorkflowCheckpointKind = 'step' | 'sleep' | 'event' | 'task' | 'workflow' | 'value';

/** An error as a run or a checkpoint keeps it. */
export interface WorkflowFailure {
  /** The error's class name, e.g. `TypeError`. */
  name: string;
  /** Its message. */
  message: string;
  /** A StemError's code, when it has one. */
  code?: string;
}

/** One completed position of a run's sequence of durable calls. */
export interface WorkflowCheckpoint {
  /** 0 for the run's first durable call, then 1, 2, … in the order the run function makes them. */
  position: number;
  /** The step's name (`sleep`, the event name, the child task name, `now` for the others). */
  name: string;
  /** What it records. */
  kind: WorkflowCheckpointKind;
  /** The recorded value (a step's result, `{ until }` of a sleep, an event's payload). */
  value?: unknown;
  /** A step (or child task) that failed for good: its error, thrown again on replay. */
  error?: WorkflowFailure;
  /** An event wait that timed out instead of receiving its event. */
  timedOut?: boolean;
  /** Epoch ms the position was first reached (a step: when it started). */
  startedAt?: number;
  /** Epoch ms the checkpoint was written. */
  finishedAt: number;
}

/** What a suspended run waits for: an event `(event, key)`, recorded at `position` once it comes. */
export interface WorkflowWaiter {
  /** The event name, e.g. `payment` (`stem.task` for a child task). */
  event: string;
  /** The key that picks one run's event, e.g. an order id (a child task's id). */
  key: string;
  /** The position the payload is recorded at. */
  position: number;
  /** The checkpoint's name and kind once delivered. */
  step: string;
  /** `event`, `task` for a child task, `workflow` for a child workflow. */
  kind: WorkflowCheckpointKind;
  /** Epoch ms after which the wait times out (none: waits for ever). */
  deadline?: number;
}

/** A run's lease while a worker advances it. */
export interface WorkflowLease {
  /** Who holds it (one per advance). */
  owner: string;
  /** Epoch ms it ends unless renewed. */
  until: number;
}

/** One run of a workflow. */
export interface WorkflowRun {
  /** The run id (a UUIDv7 unless the starter chose one). */
  id: string;
  /** The workflow's name. */
  workflow: string;
  /** The definition version it started on (runs are pinned to it). */
  version: number;
  /** The input it was started with. */
  input: unknown;
  /** The queue its advance tasks go to (none: routing or the default queue). */
  queue?: string;
  /** Where it stands. */
  status: WorkflowRunStatus;
  /** The run function's return value, once succeeded. */
  result?: unknown;
  /** Why it failed or was cancelled. */
  error?: WorkflowFailure;
  /** Epoch ms a sleeping run (or a waiting run's timeout) is due. */
  wakeAt?: number;
  /** The event a waiting run waits for. */
  waiting?: WorkflowWaiter;
  /** The advancing worker's lease. */
  lease?: WorkflowLease;
  /** How many times it was rewound: part of the ids of its advance tasks. */
  rewinds: number;
  /** Epoch ms created. */
  createdAt: number;
  /** Epoch ms of the last change. */
  updatedAt: number;
  /** Epoch ms it reached a final status. */
  finishedAt?: number;
}

/** A run to create. */
export interface NewWorkflowRun {
  id: string;
  workflow: string;
  version: number;
  input: unknown;
  queue?: string;
}

/** What a run records beside its input and result. */
export type WorkflowRunMeta = Omit<WorkflowRun, 'input' | 'result'>;

/** The record of a run just created (running, never rewound), for stores that keep it apart from its input. */
export function newWorkflowRunMeta(run: NewWorkflowRun, now: number): WorkflowRunMeta {
  const meta: WorkflowRunMeta = {
    id: run.id,
    workflow: run.workflow,
    version: run.version,
    status: 'running',
    rewinds: 0,
    createdAt: now,
    updatedAt: now,
  };
  if (run.queue !== undefined) meta.queue = run.queue;
  return meta;
}

/** What `claim` answers. */
export type WorkflowClaim =
  | { claimed: true; run: WorkflowRun }
  | { claimed: false; reason: 'missing' }
  | { claimed: false; reason: 'final' | 'leased'; run: WorkflowRun };

/** What `suspend` answers: suspended, or the event was already there (recorded at the waiter's position), or the lease is lost. */
export type WorkflowSuspension =
  | { suspended: true }
  | { suspended: false; checkpoint: WorkflowCheckpoint }
  | { suspended: false; lost: true };

/** The end of a run. */
export type WorkflowEnding = { status: 'succeeded'; result: unknown } | { status: 'failed'; error: WorkflowFailure };

/** Filters of `listRuns`. */
export interface WorkflowRunFilter {
  workflow?: string;
  status?: WorkflowRunStatus;
  /** At most this many (default 100). */
  limit?: number;
}

/** A run an emit delivered to: its id and the waiter it had. */
export interface WorkflowDelivery {
  run: WorkflowRun;
  checkpoint: WorkflowCheckpoint;
}

/**
 * Stores durable workflow runs. Times are passed in (`now`, epoch ms) so a store needs no clock.
 *
 * The event rule: an emit with waiters delivers to every run waiting on `(event, key)` (each gets a
 * checkpoint at its waiter's position, and is made runnable) and is not kept. An emit with no
 * waiter is buffered per `(event, key)` for `bufferTtlMs`; the first run to wait on that pair
 * takes the oldest buffered event still alive (first in, first out, each delivered once).
 */
export interface WorkflowStore {
  /** Creates a run (status `running`); when the id exists, returns the stored run and `created: false`. */
  createRun(run: NewWorkflowRun, now: number): Promise<{ run: WorkflowRun; created: boolean }>;
  /** One run, or null. */
  getRun(id: string): Promise<WorkflowRun | null>;
  /** Runs, newest first (by createdAt, then id). */
  listRuns(filter?: WorkflowRunFilter): Promise<WorkflowRun[]>;
  /** The run's checkpoints by position (none for an unknown id). */
  checkpoints(id: string): Promise<WorkflowCheckpoint[]>;
  /**
   * Takes the run's lease for `leaseMs` (status `running`) unless the run is missing, final, or leased
   * by another owner whose lease has not ended.
   */
  claim(id: string, owner: string, leaseMs: number, now: number): Promise<WorkflowClaim>;
  /** Extends the lease; false when `owner` no longer holds it (taken over, cancelled, rewound). */
  renew(id: string, owner: string, leaseMs: number, now: number): Promise<boolean>;
  /**
   * Records a checkpoint unless its position already has one, and returns the one stored there
   * (this one, or the earlier writer's). With `owner`, only while that owner holds the lease of a
   * run that is not final (else null). A checkpoint at the position of the run's waiter removes the
   * waiter.
   */
  saveCheckpoint(id: string, checkpoint: WorkflowCheckpoint, owner: string | undefined, now: number): Promise<WorkflowCheckpoint | null>;
  /**
   * Releases the lease and suspends the run: `sleeping` until `wakeAt`, or `waiting` on `waiter`.
   * With a waiter, when its position already has a checkpoint or a buffered event of its
   * `(event, key)` is alive, nothing is suspended: the checkpoint is returned (a buffered event is
   * consumed and recorded first). `lost` when `owner` does not hold the lease.
   */
  suspend(id: string, owner: string, until: { wakeAt?: number; waiter?: WorkflowWaiter }, now: number): Promise<WorkflowSuspension>;
  /** Ends the run (its lease and waiter go); false when `owner` does not hold the lease. */
  finish(id: string, owner: string, ending: WorkflowEnding, now: number): Promise<boolean>;
  /** Gives the lease up, status unchanged (an advance that stopped early). */
  release(id: string, owner: string, now: number): Promise<void>;
  /** Delivers or buffers an event (see the event rule above); returns the runs it was delivered to. */
  emit(event: string, key: string, payload: unknown, options: { now: number; bufferTtlMs: number }): Promise<WorkflowDelivery[]>;
  /** Cancels a run that is not final (lease and waiter dropped); returns the run as stored, or null when unknown. */
  cancel(id: string, reason: string, now: number): Promise<WorkflowRun | null>;
  /**
   * Deletes the checkpoints at `position` and after, drops lease, waiter and ending, sets `running`
   * and counts a rewind; returns the run, or null when unknown.
   */
  rewind(id: string, position: number, now: number): Promise<WorkflowRun | null>;
  /** Releases connections. */
  close(): Promise<void>;
}
