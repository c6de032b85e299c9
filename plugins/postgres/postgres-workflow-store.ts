import { sql, type Kysely, type Transaction } from 'kysely';
import type {
  NewWorkflowRun,
  WorkflowCheckpoint,
  WorkflowClaim,
  WorkflowDelivery,
  WorkflowEnding,
  WorkflowFailure,
  WorkflowRun,
  WorkflowRunFilter,
  WorkflowRunStatus,
  WorkflowStore,
  WorkflowSuspension,
  WorkflowWaiter,
} from '../../sdk/contracts/workflow-store.js';
import type { Database } from './database.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

/** A row of stem_workflow_runs as pg returns it (int8 as strings, json parsed). */
interface RunRow {
  id: string;
  workflow: string;
  version: number;
  queue: string | null;
  status: WorkflowRunStatus;
  input: unknown;
  result: unknown;
  error: WorkflowFailure | null;
  wake_at: string | null;
  waiting: WorkflowWaiter | null;
  lease_owner: string | null;
  lease_until: string | null;
  rewinds: number;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

const FINAL = sql`('succeeded', 'failed', 'cancelled')`;

function toRun(row: RunRow): WorkflowRun {
  const run: WorkflowRun = {
    id: row.id,
    workflow: row.workflow,
    version: row.version,
    input: row.input,
    status: row.status,
    rewinds: row.rewinds,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
  if (row.queue !== null) run.queue = row.queue;
  if (row.status === 'succeeded') run.result = row.result;
  if (row.error !== null) run.error = row.error;
  if (row.wake_at !== null) run.wakeAt = Number(row.wake_at);
  if (row.waiting !== null) run.waiting = row.waiting;
  if (row.lease_owner !== null && row.lease_until !== null) run.lease = { owner: row.lease_owner, until: Number(row.lease_until) };
  if (row.finished_at !== null) run.finishedAt = Number(row.finished_at);
  return run;
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

function isFinal(status: WorkflowRunStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** The checkpoint an event delivered to `waiter` becomes. */
function delivered(waiter: WorkflowWaiter, payload: unknown, now: number): WorkflowCheckpoint {
  return { position: waiter.position, name: waiter.step, kind: waiter.kind, value: payload, finishedAt: now };
}

type Db = Kysely<Database> | Transaction<Database>;

/**
 * The WorkflowStore contract on Postgres: runs, checkpoints (one row per position, insert if
 * absent), waiters and early events in four tables (migration 09). Each change is one statement
 * or one transaction that locks the run row; an emit and a suspension on the same (event, key)
 * also take a transaction-scoped advisory lock on the pair, so an event cannot slip between a
 * waiter's check of the buffer and its registration.
 */
export class PostgresWorkflowStore extends PostgresService implements WorkflowStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres workflow store');
  }

  private get runs() {
    return this.table('stem_workflow_runs');
  }

  private get points() {
    return this.table('stem_workflow_checkpoints');
  }

  private get waiters() {
    return this.table('stem_workflow_waiters');
  }

  private get events() {
    return this.table('stem_workflow_events');
  }

  async createRun(run: NewWorkflowRun, now: number): Promise<{ run: WorkflowRun; created: boolean }> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<RunRow>`insert into ${this.runs} (namespace, id, workflow, version, queue, status, input, rewinds, created_at, updated_at)
        values (${this.namespace}, ${run.id}, ${run.workflow}, ${run.version}, ${run.queue ?? null}, 'running', ${json(run.input)}::json,
          0, ${now}, ${now})
        on conflict (namespace, id) do nothing returning *`.execute(this.connection.db),
    );
    if (rows[0] !== undefined) return { run: toRun(rows[0]), created: true };
    return { run: (await this.getRun(run.id))!, created: false };
  }

  async getRun(id: string): Promise<WorkflowRun | null> {
    this.assertOpen();
    const row = await this.connection.run(() => this.readRun(this.connection.db, id, false));
    return row === undefined ? null : toRun(row);
  }

  async listRuns(filter: WorkflowRunFilter = {}): Promise<WorkflowRun[]> {
    this.assertOpen();
    const workflow = filter.workflow === undefined ? sql`` : sql`and workflow = ${filter.workflow}`;
    const status = filter.status === undefined ? sql`` : sql`and status = ${filter.status}`;
    const { rows } = await this.connection.run(() =>
      sql<RunRow>`select * from ${this.runs} where namespace = ${this.namespace} ${workflow} ${status}
        order by created_at desc, id collate "C" desc limit ${Math.max(0, Math.floor(filter.limit ?? 100))}`.execute(this.connection.db),
    );
    return rows.map(toRun);
  }

  async checkpoints(id: string): Promise<WorkflowCheckpoint[]> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<{ checkpoint: WorkflowCheckpoint }>`select checkpoint from ${this.points}
        where namespace = ${this.namespace} and run_id = ${id} order by position`.execute(this.connection.db),
    );
    return rows.map((row) => row.checkpoint);
  }

  async claim(id: string, owner: string, leaseMs: number, now: number): Promise<WorkflowClaim> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<RunRow>`update ${this.runs} set lease_owner = ${owner}, lease_until = ${now + leaseMs}, status = 'running', updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id} and status not in ${FINAL}
          and (lease_owner is null or lease_owner = ${owner} or lease_until <= ${now})
        returning *`.execute(this.connection.db),
    );
    if (rows[0] !== undefined) return { claimed: true, run: toRun(rows[0]) };
    const run = await this.getRun(id);
    if (run === null) return { claimed: false, reason: 'missing' };
    return { claimed: false, reason: isFinal(run.status) ? 'final' : 'leased', run };
  }

  async renew(id: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql`update ${this.runs} set lease_until = ${now + leaseMs}
        where namespace = ${this.namespace} and id = ${id} and lease_owner = ${owner} and status not in ${FINAL}
        returning 1`.execute(this.connection.db),
    );
    return rows.length === 1;
  }

  async saveCheckpoint(
    id: string,
    checkpoint: WorkflowCheckpoint,
    owner: string | undefined,
    now: number,
  ): Promise<WorkflowCheckpoint | null> {
    this.assertOpen();
    if (owner !== undefined) {
      // The advancing worker's path, one statement: lock the run it holds, insert if absent, read back.
      const { rows } = await this.connection.run(() =>
        sql<{ held: boolean; waiting: WorkflowWaiter | null; inserted: WorkflowCheckpoint | null; existing: WorkflowCheckpoint | null }>`
          with run as (
            select id, waiting from ${this.runs}
            where namespace = ${this.namespace} and id = ${id} and lease_owner = ${owner} and status not in ${FINAL}
            for update
          ), inserted as (
            insert into ${this.points} (namespace, run_id, position, checkpoint)
            select ${this.namespace}, run.id, ${checkpoint.position}, ${JSON.stringify(checkpoint)}::json from run
            on conflict do nothing returning checkpoint
          ), touched as (
            update ${this.runs} set updated_at = ${now}
            where namespace = ${this.namespace} and id = ${id} and exists (select 1 from inserted) returning 1
          )
          select exists (select 1 from run) as held, (select waiting from run) as waiting,
            (select checkpoint from inserted) as inserted, (select count(*) from touched) as touched,
            (select checkpoint from ${this.points}
              where namespace = ${this.namespace} and run_id = ${id} and position = ${checkpoint.position}) as existing`.execute(
          this.connection.db,
        ),
      );
      const row = rows[0]!;
      if (!row.held) return null;
      // A checkpoint at the waiter's position (a timeout) also removes the waiter: the full path does that.
      if (row.waiting === null || row.waiting.position !== checkpoint.position) return row.inserted ?? row.existing;
    }
    return this.transaction(async (trx) => {
      const row = await this.readRun(trx, id, true);
      if (row === undefined) return null;
      if (owner !== undefined && (isFinal(row.status) || row.lease_owner !== owner)) return null;
      return this.record(trx, row, checkpoint, now);
    });
  }

  async suspend(id: string, owner: string, until: { wakeAt?: number; waiter?: WorkflowWaiter }, now: number): Promise<WorkflowSuspension> {
    this.assertOpen();
    const waiter = until.waiter;
    return this.transaction(async (trx): Promise<WorkflowSuspension> => {
      if (waiter !== undefined) await this.lockPair(trx, waiter.event, waiter.key);
      const row = await this.readRun(trx, id, true);
      if (row === undefined || isFinal(row.status) || row.lease_owner !== owner) return { suspended: false, lost: true };
      if (waiter !== undefined) {
        const existing = await this.readCheckpoint(trx, id, waiter.position);
        if (existing !== undefined) return { suspended: false, checkpoint: existing };
        const { rows } = await sql<{ payload: unknown }>`delete from ${this.events} where seq = (
            select seq from ${this.events}
            where namespace = ${this.namespace} and event = ${waiter.event} and key = ${waiter.key} and expires_at > ${now}
            order by seq limit 1)
          returning payload`.execute(trx);
        if (rows[0] !== undefined) {
          return { suspended: false, checkpoint: await this.record(trx, row, delivered(waiter, rows[0].payload, now), now) };
        }
        await sql`delete from ${this.waiters} where namespace = ${this.namespace} and run_id = ${id}`.execute(trx);
        await sql`insert into ${this.waiters} (namespace, event, key, run_id)
          values (${this.namespace}, ${waiter.event}, ${waiter.key}, ${id}) on conflict do nothing`.execute(trx);
      }
      await sql`update ${this.runs} set status = ${waiter === undefined ? 'sleeping' : 'waiting'},
          waiting = ${waiter === undefined ? null : JSON.stringify(waiter)}::json, wake_at = ${until.wakeAt ?? null},
          lease_owner = null, lease_until = null, updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id}`.execute(trx);
      return { suspended: true };
    });
  }

  async finish(id: string, owner: string, ending: WorkflowEnding, now: number): Promise<boolean> {
    this.assertOpen();
    const result = ending.status === 'succeeded' ? json(ending.result) : null;
    const error = ending.status === 'failed' ? JSON.stringify(ending.error) : null;
    return this.transaction(async (trx) => {
      const { rows } = await sql`update ${this.runs} set status = ${ending.status}, result = ${result}::json, error = ${error}::json,
          lease_owner = null, lease_until = null, waiting = null, wake_at = null, finished_at = ${now}, updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id} and lease_owner = ${owner} and status not in ${FINAL}
        returning 1`.execute(trx);
      if (rows.length === 0) return false;
      await sql`delete from ${this.waiters} where namespace = ${this.namespace} and run_id = ${id}`.execute(trx);
      return true;
    });
  }

  async release(id: string, owner: string, now: number): Promise<void> {
    this.assertOpen();
    await this.connection.run(() =>
      sql`update ${this.runs} set lease_owner = null, lease_until = null, updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id} and lease_owner = ${owner}`.execute(this.connection.db),
    );
  }

  async emit(event: string, key: string, payload: unknown, options: { now: number; bufferTtlMs: number }): Promise<WorkflowDelivery[]> {
    this.assertOpen();
    const { now } = options;
    return this.transaction(async (trx) => {
      await this.lockPair(trx, event, key);
      const { rows } =
        await sql<RunRow>`select r.* from ${this.runs} r join ${this.waiters} w on w.namespace = r.namespace and w.run_id = r.id
        where w.namespace = ${this.namespace} and w.event = ${event} and w.key = ${key}
        order by r.id for update of r`.execute(trx);
      const deliveries: WorkflowDelivery[] = [];
      for (const row of rows) {
        const waiter = row.waiting;
        if (waiter === null || waiter.event !== event || waiter.key !== key) continue;
        const checkpoint = await this.record(trx, row, delivered(waiter, payload, now), now);
        const { rows: updated } = await sql<RunRow>`update ${this.runs}
            set status = case when lease_owner is null or lease_until <= ${now} then 'running' else status end, wake_at = null
          where namespace = ${this.namespace} and id = ${row.id} returning *`.execute(trx);
        deliveries.push({ run: toRun(updated[0]!), checkpoint });
      }
      await sql`delete from ${this.waiters} where namespace = ${this.namespace} and event = ${event} and key = ${key}`.execute(trx);
      if (deliveries.length === 0) {
        await sql`delete from ${this.events} where namespace = ${this.namespace} and event = ${event} and key = ${key}
          and expires_at <= ${now}`.execute(trx);
        await sql`insert into ${this.events} (namespace, event, key, payload, expires_at)
          values (${this.namespace}, ${event}, ${key}, ${json(payload)}::json, ${now + options.bufferTtlMs})`.execute(trx);
      }
      return deliveries;
    });
  }

  async cancel(id: string, reason: string, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    const error = JSON.stringify({ name: 'WorkflowCancelled', message: reason, code: 'workflow-cancelled' });
    await this.transaction(async (trx) => {
      const { rows } =
        await sql`update ${this.runs} set status = 'cancelled', error = ${error}::json, lease_owner = null, lease_until = null,
          waiting = null, wake_at = null, finished_at = ${now}, updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id} and status not in ${FINAL} returning 1`.execute(trx);
      if (rows.length > 0) await sql`delete from ${this.waiters} where namespace = ${this.namespace} and run_id = ${id}`.execute(trx);
    });
    return this.getRun(id);
  }

  async rewind(id: string, position: number, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    return this.transaction(async (trx) => {
      const { rows } = await sql<RunRow>`update ${this.runs} set status = 'running', result = null, error = null, lease_owner = null,
          lease_until = null, waiting = null, wake_at = null, finished_at = null, rewinds = rewinds + 1, updated_at = ${now}
        where namespace = ${this.namespace} and id = ${id} returning *`.execute(trx);
      if (rows[0] === undefined) return null;
      await sql`delete from ${this.points} where namespace = ${this.namespace} and run_id = ${id} and position >= ${position}`.execute(trx);
      await sql`delete from ${this.waiters} where namespace = ${this.namespace} and run_id = ${id}`.execute(trx);
      return toRun(rows[0]);
    });
  }

  private transaction<T>(body: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.connection.run(() => this.connection.db.transaction().execute(body));
  }

  private async readRun(db: Db, id: string, forUpdate: boolean): Promise<RunRow | undefined> {
    const lock = forUpdate ? sql`for update` : sql``;
    const { rows } = await sql<RunRow>`select * from ${this.runs} where namespace = ${this.namespace} and id = ${id} ${lock}`.execute(db);
    return rows[0];
  }

  private async readCheckpoint(db: Db, id: string, position: number): Promise<WorkflowCheckpoint | undefined> {
    const { rows } = await sql<{ checkpoint: WorkflowCheckpoint }>`select checkpoint from ${this.points}
      where namespace = ${this.namespace} and run_id = ${id} and position = ${position}`.execute(db);
    return rows[0]?.checkpoint;
  }

  /** Inserts a checkpoint unless its position has one (the run row is locked); removes the waiter it satisfies. */
  private async record(trx: Transaction<Database>, row: RunRow, checkpoint: WorkflowCheckpoint, now: number): Promise<WorkflowCheckpoint> {
    const { rows } = await sql`insert into ${this.points} (namespace, run_id, position, checkpoint)
      values (${this.namespace}, ${row.id}, ${checkpoint.position}, ${JSON.stringify(checkpoint)}::json)
      on conflict do nothing returning 1`.execute(trx);
    const stored = rows.length === 1 ? checkpoint : (await this.readCheckpoint(trx, row.id, checkpoint.position))!;
    const clearsWaiter = row.waiting !== null && row.waiting.position === checkpoint.position;
    if (clearsWaiter) {
      await sql`delete from ${this.waiters} where namespace = ${this.namespace} and run_id = ${row.id}`.execute(trx);
      row.waiting = null;
    }
    if (clearsWaiter || rows.length === 1) {
      await sql`update ${this.runs} set updated_at = ${now} ${clearsWaiter ? sql`, waiting = null` : sql``}
        where namespace = ${this.namespace} and id = ${row.id}`.execute(trx);
    }
    return stored;
  }

  /** Serialises emits and waiter registrations of one (event, key) until the transaction ends. */
  private async lockPair(trx: Transaction<Database>, event: string, key: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`${this.namespace}\n${event}\n${key}`}, 0))`.execute(trx);
  }
}
