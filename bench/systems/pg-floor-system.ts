import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  BENCH_QUEUE,
  drainCounted,
  PG_FLOOR_SCHEMA,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/** Stem's default result TTL (1 day), kept by the floor too. */
const RESULT_TTL_MS = 86_400_000;
/** The lease a claim takes, as Stem's default visibility timeout. */
const LEASE_MS = 30_000;
/** The channel a settled task's id is notified on (the round trip's wake-up). */
const DONE_CHANNEL = 'bench_pg_floor_done';
/**
 * BENCH_PG_FLOOR_IGNORE=1: the settle only deletes the job rows (no result, no NOTIFY), the floor
 * of `ignoreResult` and of graphile-worker's work per job.
 */
const STORE_RESULTS = process.env.BENCH_PG_FLOOR_IGNORE !== '1';
/** Settles running at once while the next batch is claimed. */
const SETTLES_IN_FLIGHT = 2;

const jobs = `${PG_FLOOR_SCHEMA}.jobs`;
const results = `${PG_FLOOR_SCHEMA}.results`;

/**
 * The floor's two tables, with what a named queue with priorities and a result store with a TTL
 * cannot do without: a job row per task (its queue, priority, payload and lease; the row being
 * there is its queued state) with the claim's index, and a result row per finished task with the
 * index that finds expired results.
 */
async function ensureTables(pool: pg.Pool): Promise<void> {
  await pool.query(`create schema if not exists ${PG_FLOOR_SCHEMA}`);
  await pool.query(`create table if not exists ${jobs} (
    id bigint generated always as identity primary key, queue text not null, priority smallint not null default 0,
    task_id text not null, payload text not null, locked_until timestamptz) with (fillfactor = 50)`);
  await pool.query(`create index if not exists jobs_claim on ${jobs} (queue, priority desc, id)`);
  await pool.query(`create table if not exists ${results} (
    id text primary key, status text not null, expires_at timestamptz not null) with (fillfactor = 70)`);
  await pool.query(`create index if not exists results_expiry on ${results} (expires_at)`);
}

/**
 * The physical floor on Postgres (#20): workload 5's work with no framework at all, as the Redis
 * floor is workload 1–4's. Enqueue is one INSERT of the task's row (a bulk enqueue one INSERT
 * from arrays); a worker claims up to its concurrency, in priority-then-age order, in one
 * `UPDATE … FOR UPDATE SKIP LOCKED` statement with a lease, runs the same handler body, and settles the batch in one statement:
 * DELETE of the job rows, INSERT of each result (with its expiry; ON CONFLICT, as a redelivered
 * task's settle needs) and a NOTIFY per finished id, run while the next batch is claimed.
 * Durable commits as Stem's. No retries, routing, state order, revokes, delays or listing:
 * what is left is Postgres, the driver and the network.
 */
export class PgFloorProducer implements ProducerSide {
  private readonly waiters = new Map<string, () => void>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly listener: pg.Client,
  ) {
    listener.on('notification', (message) => {
      const id = message.payload ?? '';
      const resolve = this.waiters.get(id);
      this.waiters.delete(id);
      resolve?.();
    });
  }

  static async open(servers: Servers): Promise<PgFloorProducer> {
    const pool = new pg.Pool({ connectionString: servers.postgresUrl, max: 10 });
    await ensureTables(pool);
    const listener = new pg.Client({ connectionString: servers.postgresUrl });
    await listener.connect();
    await listener.query(`listen ${DONE_CHANNEL}`);
    return new PgFloorProducer(pool, listener);
  }

  async enqueueOne(payload: BenchPayload, id: string = randomUUID()): Promise<void> {
    await this.pool.query({
      name: 'floor-one',
      text: `insert into ${jobs} (queue, task_id, payload) values ($1, $2, $3)`,
      values: [BENCH_QUEUE, id, JSON.stringify(payload)],
    });
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    const ids = payloads.map(() => randomUUID());
    await this.pool.query({
      name: 'floor-bulk',
      text: `insert into ${jobs} (queue, task_id, payload) select $1, * from unnest($2::text[], $3::text[])`,
      values: [BENCH_QUEUE, ids, payloads.map((payload) => JSON.stringify(payload))],
    });
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const id = randomUUID();
    const done = new Promise<void>((resolve) => this.waiters.set(id, resolve));
    await this.enqueueOne(payload, id);
    await done;
  }

  async close(): Promise<void> {
    await this.listener.end();
    await this.pool.end();
  }
}

/** The floor's worker: the claim-and-settle loop described on PgFloorProducer. */
export class PgFloorWorker implements WorkerSide {
  private serving: { stop: () => void; loop: Promise<void> } | undefined;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(servers: Servers): Promise<PgFloorWorker> {
    const pool = new pg.Pool({ connectionString: servers.postgresUrl, max: 10 });
    await ensureTables(pool);
    return new PgFloorWorker(pool);
  }

  /**
   * Claims batches of up to `concurrency` until `until()` is true and settles each on another
   * pooled connection while the next is claimed (at most SETTLES_IN_FLIGHT settles at once, as
   * Stem's worker overlaps them), reporting each settled batch's size.
   */
  private async loop(concurrency: number, until: () => boolean, onSettled: (count: number) => void): Promise<void> {
    const settling = new Set<Promise<void>>();
    while (!until()) {
      const claimed = await this.pool.query<{ id: string; task_id: string; payload: string }>({
        name: 'floor-claim',
        text: `update ${jobs} j set locked_until = now() + $2 * interval '1 millisecond'
          from (select id from ${jobs} where queue = $3 and (locked_until is null or locked_until <= now())
            order by queue, priority desc, id limit $1 for update skip locked) c
          where j.id = c.id returning j.id, j.task_id, j.payload`,
        values: [concurrency, LEASE_MS, BENCH_QUEUE],
      });
      if (claimed.rows.length === 0) {
        if (settling.size > 0) await Promise.race(settling);
        else await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      const rowIds: string[] = [];
      const taskIds: string[] = [];
      const statuses: string[] = [];
      for (const row of claimed.rows) {
        const started = startRecorder.started(JSON.parse(row.payload) as BenchPayload);
        rowIds.push(row.id);
        taskIds.push(row.task_id);
        statuses.push(JSON.stringify({ state: 'succeeded', result: started }));
      }
      const settle: Promise<void> = (
        STORE_RESULTS
          ? this.pool.query({
              name: 'floor-settle',
              text: `with gone as (delete from ${jobs} where id = any($1::bigint[])),
                stored as (insert into ${results} (id, status, expires_at)
                  select id, status, now() + $4 * interval '1 millisecond' from unnest($2::text[], $3::text[]) as u(id, status)
                  on conflict (id) do update set status = excluded.status, expires_at = excluded.expires_at returning id)
                select count(pg_notify('${DONE_CHANNEL}', id)) from stored`,
              values: [rowIds, taskIds, statuses, RESULT_TTL_MS],
            })
          : this.pool.query({ name: 'floor-delete', text: `delete from ${jobs} where id = any($1::bigint[])`, values: [rowIds] })
      ).then(() => {
        settling.delete(settle);
        onSettled(claimed.rows.length);
      });
      settling.add(settle);
      if (settling.size >= SETTLES_IN_FLIGHT) await Promise.race(settling);
    }
    await Promise.all(settling);
  }

  drain(n: number, concurrency: number): Promise<DrainReport> {
    return drainCounted(n, (until, onSettled) => this.loop(concurrency, until, onSettled));
  }

  async serve(concurrency: number): Promise<void> {
    let stopped = false;
    this.serving = {
      stop: () => {
        stopped = true;
      },
      loop: this.loop(
        concurrency,
        () => stopped,
        () => undefined,
      ),
    };
  }

  async stopServing(): Promise<void> {
    this.serving?.stop();
    await this.serving?.loop;
    this.serving = undefined;
  }

  async close(): Promise<void> {
    await this.stopServing();
    await this.pool.end();
  }
}
