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
} from '../../sdk/contracts/workflow-store.js';
import { isWorkflowFinal, newWorkflowRunMeta } from '../../sdk/contracts/workflow-store.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

interface RunRow {
  meta: string;
  input: string | null;
  result: string | null;
}

function toRun(row: RunRow): WorkflowRun {
  const run = JSON.parse(row.meta) as WorkflowRun;
  run.input = row.input === null ? null : JSON.parse(row.input);
  if (row.result !== null && run.status === 'succeeded') run.result = JSON.parse(row.result);
  return run;
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

/** The checkpoint an event delivered to `waiter` becomes. */
function delivered(waiter: WorkflowWaiter, payload: unknown, now: number): WorkflowCheckpoint {
  return { position: waiter.position, name: waiter.step, kind: waiter.kind, value: payload, finishedAt: now };
}

/**
 * The WorkflowStore contract on SQLite: runs, checkpoints, waiters and early events in four tables
 * (migration 07). Each change runs synchronously in one `BEGIN IMMEDIATE` transaction, so it is
 * atomic across every process using the file.
 */
export class SqliteWorkflowStore extends SqliteService implements WorkflowStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite workflow store');
  }

  async createRun(run: NewWorkflowRun, now: number): Promise<{ run: WorkflowRun; created: boolean }> {
    this.assertOpen();
    const meta = newWorkflowRunMeta(run, now);
    const inserted = this.connection
      .prepare(
        `insert into stem_workflow_runs (namespace, id, workflow, status, created_at, meta, input) values (?, ?, ?, ?, ?, ?, ?)
        on conflict (namespace, id) do nothing`,
      )
      .run(this.namespace, run.id, run.workflow, 'running', now, JSON.stringify(meta), json(run.input));
    return { run: (await this.getRun(run.id))!, created: inserted.changes > 0 };
  }

  async getRun(id: string): Promise<WorkflowRun | null> {
    this.assertOpen();
    const row = this.row(id);
    return row === undefined ? null : toRun(row);
  }

  async listRuns(filter: WorkflowRunFilter = {}): Promise<WorkflowRun[]> {
    this.assertOpen();
    const where = ['namespace = ?'];
    const params: unknown[] = [this.namespace];
    if (filter.workflow !== undefined) {
      where.push('workflow = ?');
      params.push(filter.workflow);
    }
    if (filter.status !== undefined) {
      where.push('status = ?');
      params.push(filter.status);
    }
    params.push(Math.max(0, Math.floor(filter.limit ?? 100)));
    const rows = this.connection
      .prepare(`select meta, input, result from stem_workflow_runs where ${where.join(' and ')} order by created_at desc, id desc limit ?`)
      .all(...params) as RunRow[];
    return rows.map(toRun);
  }

  async checkpoints(id: string): Promise<WorkflowCheckpoint[]> {
    this.assertOpen();
    const raws = this.connection
      .prepare('select checkpoint from stem_workflow_checkpoints where namespace = ? and run_id = ? order by position')
      .pluck()
      .all(this.namespace, id) as string[];
    return raws.map((raw) => JSON.parse(raw) as WorkflowCheckpoint);
  }

  async claim(id: string, owner: string, leaseMs: number, now: number): Promise<WorkflowClaim> {
    this.assertOpen();
    return this.connection.immediate((): WorkflowClaim => {
      const row = this.row(id);
      if (row === undefined) return { claimed: false, reason: 'missing' };
      const run = toRun(row);
      if (isWorkflowFinal(run.status)) return { claimed: false, reason: 'final', run };
      if (run.lease !== undefined && run.lease.owner !== owner && run.lease.until > now) return { claimed: false, reason: 'leased', run };
      run.lease = { owner, until: now + leaseMs };
      run.status = 'running';
      run.updatedAt = now;
      this.store(run);
      return { claimed: true, run };
    });
  }

  async renew(id: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const run = this.held(id, owner);
      if (run === undefined) return false;
      run.lease = { owner, until: now + leaseMs };
      this.store(run);
      return true;
    });
  }

  async saveCheckpoint(
    id: string,
    checkpoint: WorkflowCheckpoint,
    owner: string | undefined,
    now: number,
  ): Promise<WorkflowCheckpoint | null> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const row = this.row(id);
      const run = owner === undefined ? (row === undefined ? undefined : toRun(row)) : this.held(id, owner);
      if (run === undefined) return null;
      const stored = this.record(run, checkpoint, now);
      this.store(run);
      return stored;
    });
  }

  async suspend(id: string, owner: string, until: { wakeAt?: number; waiter?: WorkflowWaiter }, now: number): Promise<WorkflowSuspension> {
    this.assertOpen();
    return this.connection.immediate((): WorkflowSuspension => {
      const run = this.held(id, owner);
      if (run === undefined) return { suspended: false, lost: true };
      const waiter = until.waiter;
      if (waiter !== undefined) {
        const existing = this.checkpointAt(id, waiter.position);
        if (existing !== undefined) return { suspended: false, checkpoint: existing };
        const buffered = this.connection
          .prepare(
            `delete from stem_workflow_events where seq = (select seq from stem_workflow_events
              where namespace = ? and event = ? and key = ? and expires_at > ? order by seq limit 1) returning payload`,
          )
          .pluck()
          .get(this.namespace, waiter.event, waiter.key, now) as string | undefined;
        if (buffered !== undefined) {
          const checkpoint = this.record(run, delivered(waiter, JSON.parse(buffered), now), now);
          this.store(run);
          return { suspended: false, checkpoint };
        }
        this.dropWaiter(run);
        run.waiting = waiter;
        this.connection
          .prepare('insert or ignore into stem_workflow_waiters (namespace, event, key, run_id) values (?, ?, ?, ?)')
          .run(this.namespace, waiter.event, waiter.key, id);
      }
      run.status = waiter === undefined ? 'sleeping' : 'waiting';
      if (until.wakeAt === undefined) delete run.wakeAt;
      else run.wakeAt = until.wakeAt;
      delete run.lease;
      run.updatedAt = now;
      this.store(run);
      return { suspended: true };
    });
  }

  async finish(id: string, owner: string, ending: WorkflowEnding, now: number): Promise<boolean> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const run = this.held(id, owner);
      if (run === undefined) return false;
      this.end(run, ending.status, now);
      if (ending.status === 'failed') run.error = ending.error;
      this.store(run, ending.status === 'succeeded' ? json(ending.result) : null);
      return true;
    });
  }

  async release(id: string, owner: string, now: number): Promise<void> {
    this.assertOpen();
    this.connection.immediate(() => {
      const row = this.row(id);
      if (row === undefined) return;
      const run = toRun(row);
      if (run.lease?.owner !== owner) return;
      delete run.lease;
      run.updatedAt = now;
      this.store(run);
    });
  }

  async emit(event: string, key: string, payload: unknown, options: { now: number; bufferTtlMs: number }): Promise<WorkflowDelivery[]> {
    this.assertOpen();
    const { now } = options;
    return this.connection.immediate(() => {
      const ids = this.connection
        .prepare('select run_id from stem_workflow_waiters where namespace = ? and event = ? and key = ? order by run_id')
        .pluck()
        .all(this.namespace, event, key) as string[];
      const deliveries: WorkflowDelivery[] = [];
      for (const id of ids) {
        const row = this.row(id);
        const run = row === undefined ? undefined : toRun(row);
        const waiter = run?.waiting;
        if (run === undefined || waiter === undefined || waiter.event !== event || waiter.key !== key) continue;
        const checkpoint = this.record(run, delivered(waiter, payload, now), now);
        if (run.lease === undefined || run.lease.until <= now) run.status = 'running';
        delete run.wakeAt;
        this.store(run);
        deliveries.push({ run, checkpoint });
      }
      this.connection
        .prepare('delete from stem_workflow_waiters where namespace = ? and event = ? and key = ?')
        .run(this.namespace, event, key);
      if (deliveries.length === 0) {
        this.connection
          .prepare('delete from stem_workflow_events where namespace = ? and event = ? and key = ? and expires_at <= ?')
          .run(this.namespace, event, key, now);
        this.connection
          .prepare('insert into stem_workflow_events (namespace, event, key, payload, expires_at) values (?, ?, ?, ?, ?)')
          .run(this.namespace, event, key, json(payload), now + options.bufferTtlMs);
      }
      return deliveries;
    });
  }

  async cancel(id: string, reason: string, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const row = this.row(id);
      if (row === undefined) return null;
      const run = toRun(row);
      if (!isWorkflowFinal(run.status)) {
        this.end(run, 'cancelled', now);
        run.error = { name: 'WorkflowCancelled', message: reason, code: 'workflow-cancelled' };
        this.store(run);
      }
      return run;
    });
  }

  async rewind(id: string, position: number, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const row = this.row(id);
      if (row === undefined) return null;
      const run = toRun(row);
      this.connection
        .prepare('delete from stem_workflow_checkpoints where namespace = ? and run_id = ? and position >= ?')
        .run(this.namespace, id, position);
      this.dropWaiter(run);
      for (const field of ['lease', 'wakeAt', 'result', 'error', 'finishedAt'] as const) delete run[field];
      run.status = 'running';
      run.rewinds += 1;
      run.updatedAt = now;
      this.store(run, null);
      return run;
    });
  }

  private row(id: string): RunRow | undefined {
    return this.connection
      .prepare('select meta, input, result from stem_workflow_runs where namespace = ? and id = ?')
      .get(this.namespace, id) as RunRow | undefined;
  }

  /** The run when `owner` holds its lease and it is not final. */
  private held(id: string, owner: string): WorkflowRun | undefined {
    const row = this.row(id);
    if (row === undefined) return undefined;
    const run = toRun(row);
    return isWorkflowFinal(run.status) || run.lease?.owner !== owner ? undefined : run;
  }

  /** Writes the run's meta and status (and its result JSON when given; null clears it). */
  private store(run: WorkflowRun, result?: string | null): void {
    const { input: _input, result: _result, ...meta } = run;
    if (result === undefined) {
      this.connection
        .prepare('update stem_workflow_runs set status = ?, meta = ? where namespace = ? and id = ?')
        .run(run.status, JSON.stringify(meta), this.namespace, run.id);
    } else {
      this.connection
        .prepare('update stem_workflow_runs set status = ?, meta = ?, result = ? where namespace = ? and id = ?')
        .run(run.status, JSON.stringify(meta), result, this.namespace, run.id);
    }
  }

  private checkpointAt(id: string, position: number): WorkflowCheckpoint | undefined {
    const raw = this.connection
      .prepare('select checkpoint from stem_workflow_checkpoints where namespace = ? and run_id = ? and position = ?')
      .pluck()
      .get(this.namespace, id, position) as string | undefined;
    return raw === undefined ? undefined : (JSON.parse(raw) as WorkflowCheckpoint);
  }

  /** Stores a checkpoint unless its position has one; removes the waiter it satisfies (the caller stores the run). */
  private record(run: WorkflowRun, checkpoint: WorkflowCheckpoint, now: number): WorkflowCheckpoint {
    const inserted = this.connection
      .prepare('insert or ignore into stem_workflow_checkpoints (namespace, run_id, position, checkpoint) values (?, ?, ?, ?)')
      .run(this.namespace, run.id, checkpoint.position, JSON.stringify(checkpoint));
    const stored = inserted.changes > 0 ? checkpoint : this.checkpointAt(run.id, checkpoint.position)!;
    if (inserted.changes > 0) run.updatedAt = now;
    if (run.waiting?.position === checkpoint.position) this.dropWaiter(run);
    return stored;
  }

  private dropWaiter(run: WorkflowRun): void {
    if (run.waiting === undefined) return;
    this.connection.prepare('delete from stem_workflow_waiters where namespace = ? and run_id = ?').run(this.namespace, run.id);
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
}
