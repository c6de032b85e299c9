import type {
  NewWorkflowRun,
  WorkflowCheckpoint,
  WorkflowClaim,
  WorkflowDelivery,
  WorkflowEnding,
  WorkflowRun,
  WorkflowRunFilter,
  WorkflowStore,
  WorkflowSuspension,
  WorkflowWaiter,
} from '../contracts/workflow-store.js';
import { isWorkflowFinal } from '../contracts/workflow-store.js';
import { ClosedError } from '../errors.js';

/** One event emitted before anyone waited for it. */
interface BufferedEvent {
  payload: unknown;
  expiresAt: number;
}

/** The key of an `(event, key)` pair in the waiter and buffer maps. */
function pairKey(event: string, key: string): string {
  return `${event}\u0000${key}`;
}

/** Newest first, then by id descending: the order every store lists runs in. */
function newestFirst(a: WorkflowRun, b: WorkflowRun): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The embedded workflow store: runs, checkpoints, waiters and buffered events in this process. */
export class MemoryWorkflowStore implements WorkflowStore {
  private readonly runs = new Map<string, WorkflowRun>();
  private readonly points = new Map<string, Map<number, WorkflowCheckpoint>>();
  /** Run ids waiting on each `(event, key)`. */
  private readonly waiters = new Map<string, Set<string>>();
  private readonly buffered = new Map<string, BufferedEvent[]>();
  private closed = false;

  async createRun(run: NewWorkflowRun, now: number): Promise<{ run: WorkflowRun; created: boolean }> {
    this.assertOpen();
    const existing = this.runs.get(run.id);
    if (existing !== undefined) return { run: structuredClone(existing), created: false };
    const stored: WorkflowRun = { ...structuredClone(run), status: 'running', rewinds: 0, createdAt: now, updatedAt: now };
    if (stored.queue === undefined) delete stored.queue;
    this.runs.set(run.id, stored);
    return { run: structuredClone(stored), created: true };
  }

  async getRun(id: string): Promise<WorkflowRun | null> {
    this.assertOpen();
    const run = this.runs.get(id);
    return run === undefined ? null : structuredClone(run);
  }

  async listRuns(filter: WorkflowRunFilter = {}): Promise<WorkflowRun[]> {
    this.assertOpen();
    const runs = [...this.runs.values()].filter(
      (run) =>
        (filter.workflow === undefined || run.workflow === filter.workflow) &&
        (filter.status === undefined || run.status === filter.status),
    );
    return runs
      .sort(newestFirst)
      .slice(0, filter.limit ?? 100)
      .map((run) => structuredClone(run));
  }

  async checkpoints(id: string): Promise<WorkflowCheckpoint[]> {
    this.assertOpen();
    const points = [...(this.points.get(id)?.values() ?? [])];
    return points.sort((a, b) => a.position - b.position).map((point) => structuredClone(point));
  }

  async claim(id: string, owner: string, leaseMs: number, now: number): Promise<WorkflowClaim> {
    this.assertOpen();
    const run = this.runs.get(id);
    if (run === undefined) return { claimed: false, reason: 'missing' };
    if (isWorkflowFinal(run.status)) return { claimed: false, reason: 'final', run: structuredClone(run) };
    if (run.lease !== undefined && run.lease.owner !== owner && run.lease.until > now) {
      return { claimed: false, reason: 'leased', run: structuredClone(run) };
    }
    run.lease = { owner, until: now + leaseMs };
    run.status = 'running';
    run.updatedAt = now;
    return { claimed: true, run: structuredClone(run) };
  }

  async renew(id: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    this.assertOpen();
    const run = this.held(id, owner);
    if (run === undefined) return false;
    run.lease = { owner, until: now + leaseMs };
    return true;
  }

  async saveCheckpoint(
    id: string,
    checkpoint: WorkflowCheckpoint,
    owner: string | undefined,
    now: number,
  ): Promise<WorkflowCheckpoint | null> {
    this.assertOpen();
    const run = owner === undefined ? this.runs.get(id) : this.held(id, owner);
    if (run === undefined) return null;
    return structuredClone(this.record(run, checkpoint, now));
  }

  async suspend(id: string, owner: string, until: { wakeAt?: number; waiter?: WorkflowWaiter }, now: number): Promise<WorkflowSuspension> {
    this.assertOpen();
    const run = this.held(id, owner);
    if (run === undefined) return { suspended: false, lost: true };
    const waiter = until.waiter;
    if (waiter !== undefined) {
      const existing = this.points.get(id)?.get(waiter.position);
      const event = existing === undefined ? this.takeBuffered(waiter.event, waiter.key, now) : undefined;
      if (existing !== undefined || event !== undefined) {
        const checkpoint = existing ?? this.record(run, delivered(waiter, event!.payload, now), now);
        return { suspended: false, checkpoint: structuredClone(checkpoint) };
      }
      this.dropWaiter(run);
      run.waiting = structuredClone(waiter);
      const pair = pairKey(waiter.event, waiter.key);
      let set = this.waiters.get(pair);
      if (set === undefined) this.waiters.set(pair, (set = new Set()));
      set.add(id);
    }
    run.status = waiter === undefined ? 'sleeping' : 'waiting';
    if (until.wakeAt === undefined) delete run.wakeAt;
    else run.wakeAt = until.wakeAt;
    delete run.lease;
    run.updatedAt = now;
    return { suspended: true };
  }

  async finish(id: string, owner: string, ending: WorkflowEnding, now: number): Promise<boolean> {
    this.assertOpen();
    const run = this.held(id, owner);
    if (run === undefined) return false;
    this.end(run, ending.status, now);
    if (ending.status === 'succeeded') run.result = structuredClone(ending.result);
    else run.error = structuredClone(ending.error);
    return true;
  }

  async release(id: string, owner: string, now: number): Promise<void> {
    this.assertOpen();
    const run = this.runs.get(id);
    if (run?.lease?.owner !== owner) return;
    delete run.lease;
    run.updatedAt = now;
  }

  async emit(event: string, key: string, payload: unknown, options: { now: number; bufferTtlMs: number }): Promise<WorkflowDelivery[]> {
    this.assertOpen();
    const pair = pairKey(event, key);
    const ids = [...(this.waiters.get(pair) ?? [])];
    const deliveries: WorkflowDelivery[] = [];
    for (const id of ids) {
      const run = this.runs.get(id);
      const waiter = run?.waiting;
      if (run === undefined || waiter === undefined) continue;
      const checkpoint = this.record(run, delivered(waiter, payload, options.now), options.now);
      if (run.lease === undefined || run.lease.until <= options.now) run.status = 'running';
      delete run.wakeAt;
      deliveries.push({ run: structuredClone(run), checkpoint: structuredClone(checkpoint) });
    }
    this.waiters.delete(pair);
    if (deliveries.length === 0) {
      const queue = (this.buffered.get(pair) ?? []).filter((entry) => entry.expiresAt > options.now);
      queue.push({ payload: structuredClone(payload), expiresAt: options.now + options.bufferTtlMs });
      this.buffered.set(pair, queue);
    }
    return deliveries;
  }

  async cancel(id: string, reason: string, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    const run = this.runs.get(id);
    if (run === undefined) return null;
    if (!isWorkflowFinal(run.status)) {
      this.end(run, 'cancelled', now);
      run.error = { name: 'WorkflowCancelled', message: reason, code: 'workflow-cancelled' };
    }
    return structuredClone(run);
  }

  async rewind(id: string, position: number, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    const run = this.runs.get(id);
    if (run === undefined) return null;
    const points = this.points.get(id);
    for (const at of [...(points?.keys() ?? [])]) if (at >= position) points!.delete(at);
    this.dropWaiter(run);
    delete run.lease;
    delete run.wakeAt;
    delete run.result;
    delete run.error;
    delete run.finishedAt;
    run.status = 'running';
    run.rewinds += 1;
    run.updatedAt = now;
    return structuredClone(run);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The run when `owner` holds its lease and it is not final. */
  private held(id: string, owner: string): WorkflowRun | undefined {
    const run = this.runs.get(id);
    if (run === undefined || isWorkflowFinal(run.status) || run.lease?.owner !== owner) return undefined;
    return run;
  }

  /** Stores a checkpoint unless its position has one; removes the waiter it satisfies. Returns the stored one. */
  private record(run: WorkflowRun, checkpoint: WorkflowCheckpoint, now: number): WorkflowCheckpoint {
    let points = this.points.get(run.id);
    if (points === undefined) this.points.set(run.id, (points = new Map()));
    let stored = points.get(checkpoint.position);
    if (stored === undefined) {
      stored = structuredClone(checkpoint);
      points.set(checkpoint.position, stored);
      run.updatedAt = now;
    }
    if (run.waiting?.position === checkpoint.position) this.dropWaiter(run);
    return stored;
  }

  private dropWaiter(run: WorkflowRun): void {
    const waiter = run.waiting;
    if (waiter === undefined) return;
    const pair = pairKey(waiter.event, waiter.key);
    const set = this.waiters.get(pair);
    set?.delete(run.id);
    if (set?.size === 0) this.waiters.delete(pair);
    delete run.waiting;
  }

  private end(run: WorkflowRun, status: 'succeeded' | 'failed' | 'cancelled', now: number): void {
    this.dropWaiter(run);
    delete run.lease;
    delete run.wakeAt;
    run.status = status;
    run.finishedAt = now;
    run.updatedAt = now;
  }

  private takeBuffered(event: string, key: string, now: number): BufferedEvent | undefined {
    const pair = pairKey(event, key);
    const queue = this.buffered.get(pair);
    if (queue === undefined) return undefined;
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (next.expiresAt > now) {
        if (queue.length === 0) this.buffered.delete(pair);
        return next;
      }
    }
    this.buffered.delete(pair);
    return undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('MemoryWorkflowStore');
  }
}

/** The checkpoint an event delivered to `waiter` becomes. */
export function delivered(waiter: WorkflowWaiter, payload: unknown, now: number): WorkflowCheckpoint {
  return { position: waiter.position, name: waiter.step, kind: waiter.kind, value: payload, finishedAt: now };
}
