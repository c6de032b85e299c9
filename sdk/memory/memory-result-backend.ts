import type {
  ChordClaim,
  ChordClaimOptions,
  GroupStatus,
  ResultBackend,
  SetOptions,
  TaskPage,
  TaskQuery,
  TaskStatus,
  Unsubscribe,
  WorkerHeartbeat,
} from '../contracts/result-backend.js';
import { ClosedError } from '../errors.js';
import { supersedes } from '../state-order.js';
import { matchesTaskQuery, pageOf, resolveTaskQuery } from '../task-listing.js';
import { TaskWatchers } from '../task-watchers.js';

/** Options of {@link MemoryResultBackend}. */
export interface MemoryResultBackendOptions {
  /** How long a state, group or chord claim is kept when a write names no ttlMs (default one day). */
  defaultTtlMs?: number;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** A chord's claim: who holds it, until when (absent: for good), and whether it has fired. */
interface StoredChordClaim {
  claimer: string;
  leaseEndsAt?: number;
  fired: boolean;
}

interface StoredGroup {
  memberIds: string[];
  results: Map<string, TaskStatus>;
}

/** Expired records nobody reads again are swept at most this often, on a write. */
const SWEEP_INTERVAL_MS = 60_000;

function copyStatus(status: TaskStatus): TaskStatus {
  return { ...status };
}

/** Deletes the expired entries of `records`. */
function sweep<T>(records: Map<string, Expiring<T>>, now: number): void {
  for (const [key, record] of records) if (record.expiresAt <= now) records.delete(key);
}

/** Reads a record that has not expired, deleting it when it has. */
function live<T>(records: Map<string, Expiring<T>>, key: string, now: number): T | undefined {
  const record = records.get(key);
  if (record === undefined) return undefined;
  if (record.expiresAt > now) return record.value;
  records.delete(key);
  return undefined;
}

/**
 * The embedded result backend: task states, groups, chord claims and worker heartbeats in this
 * process. Expiry is lazy (checked on read) with an occasional sweep on write, so no record holds
 * a timer.
 */
export class MemoryResultBackend implements ResultBackend {
  private readonly statuses = new Map<string, Expiring<TaskStatus>>();
  private readonly groups = new Map<string, Expiring<StoredGroup>>();
  private readonly chordClaims = new Map<string, Expiring<StoredChordClaim>>();
  private readonly workers = new Map<string, Expiring<WorkerHeartbeat>>();
  private readonly watchers = new TaskWatchers();
  private readonly defaultTtlMs: number;
  private nextSweepAt = 0;
  private closed = false;

  constructor(options: MemoryResultBackendOptions = {}) {
    this.defaultTtlMs = options.defaultTtlMs ?? 86_400_000;
  }

  /**
   * Stores each state that is not older than the stored one (see `supersedes`) and tells its
   * watchers in a microtask.
   */
  async set(statuses: readonly TaskStatus[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    this.sweepNowAndThen(now);
    const expiresAt = now + (options.ttlMs ?? this.defaultTtlMs);
    for (const status of statuses) {
      if (!supersedes(status, live(this.statuses, status.id, now))) continue;
      this.statuses.set(status.id, { value: copyStatus(status), expiresAt });
      const listeners = this.watchers.get(status.id);
      if (listeners === undefined) continue;
      for (const listener of listeners) {
        const copy = copyStatus(status);
        // Asynchronous like a pub/sub backend, and a listener removed meanwhile is not called.
        queueMicrotask(() => {
          if (this.watchers.get(status.id)?.has(listener) === true) listener(copy);
        });
      }
    }
  }

  /** The stored state, or null when unknown or expired. */
  async get(id: string): Promise<TaskStatus | null> {
    this.assertOpen();
    const status = live(this.statuses, id, Date.now());
    return status === undefined ? null : copyStatus(status);
  }

  /**
   * The stored tasks matching `query`, newest first: a scan of every live state (no index, so
   * nothing is added to the write path; fine for the sizes an embedded backend holds).
   */
  async listTasks(query: TaskQuery): Promise<TaskPage> {
    this.assertOpen();
    const resolved = resolveTaskQuery(query);
    const now = Date.now();
    const matching: TaskStatus[] = [];
    for (const { value, expiresAt } of this.statuses.values()) {
      if (expiresAt > now && matchesTaskQuery(value, resolved)) matching.push(value);
    }
    const page = pageOf(matching, resolved.limit);
    page.tasks = page.tasks.map(copyStatus);
    return page;
  }

  /** Calls `listener` on each later write of `id` until unsubscribed. */
  async watch(id: string, listener: (status: TaskStatus) => void): Promise<Unsubscribe> {
    this.assertOpen();
    return this.watchers.add(id, listener);
  }

  /** Creates the group, or starts it over with no results. */
  async initGroup(groupId: string, memberIds: readonly string[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    this.sweepNowAndThen(now);
    this.groups.set(groupId, {
      value: { memberIds: [...memberIds], results: new Map() },
      expiresAt: now + (options.ttlMs ?? this.defaultTtlMs),
    });
  }

  /**
   * Records a member's result; the first record of a member wins (a redelivered task recording
   * again changes nothing). Unknown groups and non-members record nothing.
   */
  async recordGroupResult(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number }> {
    this.assertOpen();
    const group = live(this.groups, groupId, Date.now());
    if (group === undefined) return { completed: 0, expected: 0 };
    if (!group.results.has(status.id) && group.memberIds.includes(status.id)) group.results.set(status.id, copyStatus(status));
    return { completed: group.results.size, expected: group.memberIds.length };
  }

  /** The group with results in member order, or null. */
  async getGroup(groupId: string): Promise<GroupStatus | null> {
    this.assertOpen();
    const group = live(this.groups, groupId, Date.now());
    if (group === undefined) return null;
    return {
      id: groupId,
      memberIds: [...group.memberIds],
      expected: group.memberIds.length,
      completed: group.results.size,
      results: group.memberIds.map((id) => {
        const status = group.results.get(id);
        return status === undefined ? null : copyStatus(status);
      }),
    };
  }

  /** Wins when there is no claim, or the one there outlived its lease unfired (a takeover). */
  async claimChord(chordId: string, options: ChordClaimOptions = {}): Promise<ChordClaim> {
    this.assertOpen();
    const now = Date.now();
    const held = live(this.chordClaims, chordId, now);
    if (held !== undefined && (held.fired || held.leaseEndsAt === undefined || held.leaseEndsAt > now)) {
      const lost: ChordClaim = { won: false, fired: held.fired, claimer: held.claimer };
      if (!held.fired && held.leaseEndsAt !== undefined) lost.leaseEndsAt = held.leaseEndsAt;
      return lost;
    }
    const claim: StoredChordClaim = { claimer: options.claimer ?? '', fired: false };
    if (options.leaseMs !== undefined) claim.leaseEndsAt = now + options.leaseMs;
    this.chordClaims.set(chordId, { value: claim, expiresAt: now + (options.ttlMs ?? this.defaultTtlMs) });
    return held === undefined ? { won: true } : { won: true, takenOverFrom: held.claimer };
  }

  /** Marks the claim fired, so it is never taken over. */
  async chordFired(chordId: string, options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    const held = live(this.chordClaims, chordId, now);
    this.chordClaims.set(chordId, {
      value: { claimer: held?.claimer ?? '', fired: true },
      expiresAt: now + (options.ttlMs ?? this.defaultTtlMs),
    });
  }

  /** Records the worker's beat, replacing its previous one. */
  async heartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void> {
    this.assertOpen();
    const copy = { ...beat, queues: [...beat.queues], stats: { ...beat.stats } };
    this.workers.set(beat.workerId, { value: copy, expiresAt: Date.now() + ttlMs });
  }

  /** Workers with a live heartbeat, by worker id. */
  async listWorkers(): Promise<WorkerHeartbeat[]> {
    this.assertOpen();
    sweep(this.workers, Date.now());
    return [...this.workers.values()]
      .map(({ value }) => ({ ...value, queues: [...value.queues], stats: { ...value.stats } }))
      .sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
  }

  /** Forgets everything; later calls throw ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.statuses.clear();
    this.groups.clear();
    this.chordClaims.clear();
    this.workers.clear();
    this.watchers.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory result backend');
  }

  private sweepNowAndThen(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
    sweep(this.statuses, now);
    sweep(this.groups, now);
    sweep(this.chordClaims, now);
  }
}
