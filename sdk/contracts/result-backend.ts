import type { Envelope } from '../envelope.js';

/** The life of a task: queued → running → succeeded | failed | cancelled, with retried between attempts. */
export type TaskState = 'pending' | 'queued' | 'running' | 'retried' | 'succeeded' | 'failed' | 'cancelled';

/** The states after which nothing changes. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'cancelled']);

/** True for succeeded, failed and cancelled. */
export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

/** A failure as stored: plain data, so it survives any backend. */
export interface TaskError {
  /** The error class name, e.g. `TypeError`, `TimeLimitExceededError`. */
  type: string;
  /** Its message. */
  message: string;
  /** The stack, when there was one. */
  stack?: string;
  /** The StemError code, when it was one. */
  code?: string;
}

/** What the backend knows of one task. */
export interface TaskStatus {
  /** The task id. */
  id: string;
  /** The current state. */
  state: TaskState;
  /** The task name, when known. */
  name?: string;
  /** The queue it was published to. */
  queue?: string;
  /** The handler's return value (succeeded), or a partial result. */
  result?: unknown;
  /** The failure (failed, retried) or the cancel reason (cancelled). */
  error?: TaskError;
  /** The attempt this state belongs to (0 for the first). */
  attempt: number;
  /**
   * How many times the task was started over on purpose (a dead-letter replay); absent means 0.
   * With `attempt` and the state it orders the writes: see `supersedes` in sdk/state-order.ts.
   */
  generation?: number;
  /** The last `ctx.progress()` value. */
  progress?: unknown;
  /** The worker that ran it. */
  workerId?: string;
  /** Epoch ms of this state change. */
  updatedAt: number;
  /** Extra data (chain/group ids, durations, …). */
  meta?: Record<string, unknown>;
  /**
   * The task's arguments: always on `failed` and `cancelled` states (what a retry needs), and on
   * the other states only with the `extendedResults` setting (Celery's `result_extended`).
   */
  args?: unknown;
  /**
   * The rest of the envelope the task ran with, on `failed` and `cancelled` states written by a
   * worker: with `args`, what `stem.retry(id)` publishes again.
   */
  envelope?: RecordedEnvelope;
}

/** A task's envelope as a final state records it: everything but the args, which `TaskStatus.args` holds. */
export type RecordedEnvelope = Omit<Envelope, 'args'>;

/**
 * What `listTasks` selects. Filters combine with AND; `state` may name several states (any of them).
 * Results come newest `updatedAt` first (ties by id, descending), a page at a time.
 */
export interface TaskQuery {
  /** Only tasks in this state, or in any of these. */
  state?: TaskState | readonly TaskState[];
  /** Only tasks of this name. */
  name?: string;
  /** Only tasks published to this queue. */
  queue?: string;
  /** Only tasks whose `updatedAt` is at or after this (epoch ms). */
  since?: number;
  /** Only tasks whose `updatedAt` is at or before this (epoch ms). */
  until?: number;
  /** Tasks per page: default 50, at most 500. */
  limit?: number;
  /** The `cursor` of the previous page, to read the next one. */
  cursor?: string;
}

/** One page of `listTasks`. */
export interface TaskPage {
  /** The tasks, newest `updatedAt` first. */
  tasks: TaskStatus[];
  /** Pass it as `TaskQuery.cursor` for the next page; absent on the last page. */
  cursor?: string;
}

/** A group: member ids in order, and how many have finished. */
export interface GroupStatus {
  /** The group id. */
  id: string;
  /** Member task ids in the order they were given. */
  memberIds: string[];
  /** How many members there are. */
  expected: number;
  /** How many members have recorded a terminal result. */
  completed: number;
  /** Recorded results in member order; null where a member has not recorded one yet. */
  results: Array<TaskStatus | null>;
}

/** A live worker, as it reports itself. */
export interface WorkerHeartbeat {
  /** The worker id. */
  workerId: string;
  /** The host it runs on. */
  hostname: string;
  /** Its process id. */
  pid: number;
  /** The queues it consumes. */
  queues: string[];
  /** Epoch ms when it started. */
  startedAt: number;
  /** Epoch ms of this beat. */
  at: number;
  /** Counters and gauges: processed, failed, inflight, concurrency, … */
  stats: Record<string, number>;
}

/** Stops a watch. */
export type Unsubscribe = () => Promise<void>;

/** Options of a state write. */
export interface SetOptions {
  /** How long the record is kept after this write (default: the backend's). */
  ttlMs?: number;
  /**
   * The caller knows nobody can be watching these ids yet (ids it just generated): the backend
   * may skip notifying watchers. The producer sets it for `queued` states.
   */
  quiet?: boolean;
}

/** Options of a chord claim. */
export interface ChordClaimOptions extends SetOptions {
  /**
   * How long the claimer has to fire the callback (ms). A claim not marked fired by then counts as
   * abandoned (its claimer died) and the next caller takes it over. Absent: the claim holds until
   * it expires (`ttlMs`), fired or not.
   */
  leaseMs?: number;
  /** Who claims (a worker id): stored with the claim, reported to the callers that lose it. */
  claimer?: string;
}

/**
 * The answer to `claimChord`. A loser learns whether the callback was fired and, while it was
 * not, when the holder's lease ends (epoch ms by the store's clock), so it can wait and try again.
 */
export type ChordClaim =
  | {
      won: true;
      /** Present when this claim took over one whose lease ended unfired: that claim's claimer ('' when it named none). */
      takenOverFrom?: string;
    }
  | {
      won: false;
      /** The holder marked the claim fired (`chordFired`): nothing is left to do. */
      fired: boolean;
      /** The holder, when it named itself. */
      claimer?: string;
      /** When the holder's lease ends; absent for a claim without a lease (it is never taken over). */
      leaseEndsAt?: number;
    };

/**
 * Names one store's way of writing task states inside another service's round trip (a Redis
 * pipeline, a SQL statement): a broker and a backend on the same connection hold the same key,
 * and the `Writer` type is theirs to define. See `ResultBackend.stateWriter`.
 */
export interface StateWriteKey<Writer> {
  /** Which store this is, for messages (e.g. `redis`, `postgres`). */
  readonly store: string;
  /** Never set at run time: carries the `Writer` type from the key to `stateWriter`'s answer. */
  readonly writer?: Writer;
}

/** Makes a key for one connection: compare keys by identity, never by `store`. */
export function stateWriteKey<Writer>(store: string): StateWriteKey<Writer> {
  return { store };
}

/**
 * Stores task states, group membership, the chord barrier and worker heartbeats, readable from
 * any process. Implementations: sdk/memory, plugins/redis, plugins/postgres.
 */
export interface ResultBackend {
  /**
   * Writes task states (one round trip where the transport allows). Each write is applied only
   * when it is not older than the stored state (the order of `supersedes` in sdk/state-order.ts:
   * generation, then attempt, then queued < running < retried < final; a final state is not
   * replaced within its attempt), atomically, so writes may arrive on any connection in any
   * order. A write that is not applied is dropped silently and notifies no watcher.
   */
  set(statuses: readonly TaskStatus[], options?: SetOptions): Promise<void>;
  /**
   * Optional: the writer a broker uses to put this backend's state writes into its own round trip
   * (`Broker.ackWithStates`, `Broker.publishWithStates`), when `key` is the key of the connection
   * this backend writes through; undefined for any other key (another server, another
   * connection, another kind of store). The broker then falls back to separate writes.
   */
  stateWriter?<Writer>(key: StateWriteKey<Writer>): Writer | undefined;
  /** The stored state, or null for an unknown (or expired) id. */
  get(id: string): Promise<TaskStatus | null>;
  /** Calls `listener` on every later write of `id`, from any process, until unsubscribed. */
  watch(id: string, listener: (status: TaskStatus) => void): Promise<Unsubscribe>;
  /**
   * Optional: `watch`, then `get`, in one step (on Redis one round trip: SUBSCRIBE and GET go
   * together on the watching connection). Resolves once the watch is active, with the state
   * stored at that moment. `waitForTerminalStatus` uses it where a backend has it.
   */
  watchCurrent?(id: string, listener: (status: TaskStatus) => void): Promise<{ unsubscribe: Unsubscribe; current: TaskStatus | null }>;
  /** Creates (or re-creates, clearing results) a group of ordered member ids. */
  initGroup(groupId: string, memberIds: readonly string[], options?: SetOptions): Promise<void>;
  /** Records a member's terminal state (idempotent per member); returns the counts after it. */
  recordGroupResult(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number }>;
  /** The group with results in member order, or null for an unknown group. */
  getGroup(groupId: string): Promise<GroupStatus | null>;
  /**
   * Atomically claims the right to fire a chord's callback, kept for `ttlMs`. Won by exactly one
   * caller when there is no claim, and again by exactly one caller once a claim made with
   * `leaseMs` has outlived its lease without being marked fired (a takeover). Every other caller
   * loses and is told what it lost to.
   */
  claimChord(chordId: string, options?: ChordClaimOptions): Promise<ChordClaim>;
  /**
   * Marks a chord's claim fired (the callback is enqueued, or the chord's failure written): it is
   * never taken over, and later claims lose with `fired: true`. Kept for `ttlMs`.
   */
  chordFired(chordId: string, options?: SetOptions): Promise<void>;
  /** Records a worker heartbeat, kept for `ttlMs`. */
  heartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void>;
  /** Workers whose last heartbeat has not expired. */
  listWorkers(): Promise<WorkerHeartbeat[]>;
  /**
   * Optional: the stored tasks matching `query`, newest `updatedAt` first, a page at a time. The
   * cursor is stable: paging from the first page to the last shows each task that did not change
   * meanwhile exactly once. A task is listed under its current state only; expired results are
   * never listed. See `TaskQuery`, and sdk/task-listing.ts for the shared rules.
   */
  listTasks?(query: TaskQuery): Promise<TaskPage>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
