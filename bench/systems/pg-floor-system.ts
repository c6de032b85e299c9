import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  BENCH_QUEUE,
  drainCounted,
  PG_FLOOR_MODEL_SCHEMA,
  PG_FLOOR_SCHEMA,
  STEM_NAMESPACE,
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
/**
 * BENCH_PG_FLOOR_IGNORE=1: the settle only deletes the job rows (no result, no NOTIFY), the floor
 * of `ignoreResult` and of graphile-worker's work per job.
 */
const STORE_RESULTS = process.env.BENCH_PG_FLOOR_IGNORE !== '1';
/** Settles running at once while the next batch is claimed. */
const SETTLES_IN_FLIGHT = 2;

/** Joins the texts of one statement (JSON escapes every control character, so no text holds it). */
const SEPARATOR = '\u0001';

/** A claimed row, as every floor's claim returns it. */
interface ClaimedRow {
  id: string;
  task_id: string;
  payload: string;
  lease: number;
}

/**
 * What a floor writes and how: its tables, the text of a task's row and result, and its five
 * statements. Two shapes: the floor's own minimal tables (`minimalTables`) and Stem's tables,
 * created by Stem's own migrations (`stemTables`). Both run the same loop (PgFloorProducer,
 * PgFloorWorker), so the distance between them is what Stem's data model costs Postgres, and the
 * distance from the second to Stem is what Stem's code costs.
 */
export interface FloorShape {
  schema: string;
  /** The channel a settled task's id is notified on (the round trip's wake-up). */
  doneChannel: string;
  ensureTables(pool: pg.Pool, servers: Servers): Promise<void>;
  /** The INSERT of tasks `ids` with their `payloads` (one statement for one task or a thousand). */
  insert(ids: string[], payloads: BenchPayload[]): pg.QueryConfig;
  /** The claim of up to `limit` rows with a lease. */
  claim(limit: number): pg.QueryConfig;
  /** The settle of claimed `rows`: delete, store each result (`outcomes[k]` for `rows[k]`), NOTIFY each id. */
  settle(rows: ClaimedRow[], outcomes: number[]): pg.QueryConfig;
  /** The settle without results: the rows' DELETE alone. */
  remove(rows: ClaimedRow[]): pg.QueryConfig;
  /** The task id a done notification names. */
  notifiedId(payload: string): string;
}

/**
 * The floor's own tables, with what a named queue with priorities and a result store with a TTL
 * cannot do without: a job row per task (its queue, priority, payload and lease; the row being
 * there is its queued state) with the claim's index, and a result row per finished task with the
 * index that finds expired results. No NOTIFY on enqueue.
 */
export const minimalTables: FloorShape = (() => {
  const jobs = `${PG_FLOOR_SCHEMA}.jobs`;
  const results = `${PG_FLOOR_SCHEMA}.results`;
  const doneChannel = 'bench_pg_floor_done';
  return {
    schema: PG_FLOOR_SCHEMA,
    doneChannel,
    async ensureTables(pool) {
      await pool.query(`create schema if not exists ${PG_FLOOR_SCHEMA}`);
      await pool.query(`create table if not exists ${jobs} (
        id bigint generated always as identity primary key, queue text not null, priority smallint not null default 0,
        task_id text not null, payload text not null, locked_until timestamptz) with (fillfactor = 50)`);
      await pool.query(`create index if not exists jobs_claim on ${jobs} (queue, priority desc, id)`);
      await pool.query(`create table if not exists ${results} (
        id text primary key, status text not null, expires_at timestamptz not null) with (fillfactor = 70)`);
      await pool.query(`create index if not exists results_expiry on ${results} (expires_at)`);
    },
    insert: (ids, payloads) =>
      ids.length === 1
        ? {
            name: 'floor-one',
            text: `insert into ${jobs} (queue, task_id, payload) values ($1, $2, $3)`,
            values: [BENCH_QUEUE, ids[0], JSON.stringify(payloads[0])],
          }
        : {
            name: 'floor-bulk',
            text: `insert into ${jobs} (queue, task_id, payload) select $1, * from unnest($2::text[], $3::text[])`,
            values: [BENCH_QUEUE, ids, payloads.map((payload) => JSON.stringify(payload))],
          },
    claim: (limit) => ({
      name: 'floor-claim',
      text: `update ${jobs} j set locked_until = now() + $2 * interval '1 millisecond'
        from (select id from ${jobs} where queue = $3 and (locked_until is null or locked_until <= now())
          order by queue, priority desc, id limit $1 for update skip locked) c
        where j.id = c.id returning j.id, j.task_id, j.payload, 0 as lease`,
      values: [limit, LEASE_MS, BENCH_QUEUE],
    }),
    settle: (rows, outcomes) => ({
      name: 'floor-settle',
      text: `with gone as (delete from ${jobs} where id = any($1::bigint[])),
        stored as (insert into ${results} (id, status, expires_at)
          select id, status, now() + $4 * interval '1 millisecond' from unnest($2::text[], $3::text[]) as u(id, status)
          on conflict (id) do update set status = excluded.status, expires_at = excluded.expires_at returning id)
        select count(pg_notify('${doneChannel}', id)) from stored`,
      values: [
        rows.map((row) => row.id),
        rows.map((row) => row.task_id),
        outcomes.map((result) => JSON.stringify({ state: 'succeeded', result })),
        RESULT_TTL_MS,
      ],
    }),
    remove: (rows) => ({
      name: 'floor-delete',
      text: `delete from ${jobs} where id = any($1::bigint[])`,
      values: [rows.map((row) => row.id)],
    }),
    notifiedId: (payload) => payload,
  };
})();

/**
 * Stem's own tables (its migrations, run into PG_FLOOR_MODEL_SCHEMA) with rows of the size and
 * shape Stem writes: the envelope as payload (~240 bytes) and the `queued` state (~136 bytes) in
 * the message row, a wake-up NOTIFY per enqueue statement, the claim of Stem's plain claim (the
 * same WHERE and lease columns, on the same partial index), and a settle that deletes by id and
 * lease, upserts Stem's eight-column state row (three indexes) and NOTIFYs the id with the status.
 * What it leaves out is Stem's code: no envelope decoding, hooks, state order, keyed-row check or
 * due time, and texts built from templates.
 */
export const stemTables: FloorShape = (() => {
  const schema = PG_FLOOR_MODEL_SCHEMA;
  const messages = `${schema}.stem_messages`;
  const results = `${schema}.stem_results`;
  const doneChannel = 'bench_pg_floor_model_done';
  const workerId = `floor-${process.pid}`;
  return {
    schema,
    doneChannel,
    async ensureTables(_pool, servers) {
      // Stem's migrations, from the compiled package as the Stem system loads it (npm run bench builds it).
      const dist = '../../dist/';
      const { Stem } = (await import(`${dist}sdk/index.js`)) as typeof import('../../sdk/index.js');
      const { postgres } = (await import(`${dist}plugins/postgres/index.js`)) as typeof import('../../plugins/postgres/index.js');
      const stem = await Stem.create({ plugins: [postgres({ url: servers.postgresUrl, schema, namespace: STEM_NAMESPACE })] });
      await stem.close();
    },
    insert(ids, payloads) {
      const now = Date.now();
      // The texts travel joined by SEPARATOR, as Stem sends them: a text[] would escape every quote.
      let envelopes = '';
      let queued = '';
      for (let k = 0; k < ids.length; k++) {
        const id = ids[k]!;
        const separator = k === 0 ? '' : SEPARATOR;
        envelopes +=
          `${separator}{"id":"${id}","name":"bench.noop","args":${JSON.stringify(payloads[k])},"headers":{},"queue":"${BENCH_QUEUE}",` +
          `"priority":5,"attempt":0,"maxRetries":0,"visibilityTimeoutMs":${LEASE_MS},"createdAt":${now},"meta":{}}`;
        queued += `${separator}{"id":"${id}","state":"queued","name":"bench.noop","queue":"${BENCH_QUEUE}","attempt":0,"updatedAt":${now}}`;
      }
      return {
        name: 'floor-model-insert',
        text: `with inserted as (
            insert into ${messages} (namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before, queued_state)
            select $1, $2, '', u.id, 5, u.payload, ${LEASE_MS}, now(), u.queued
            from rows from (unnest($3::text[]), unnest(string_to_array($4::text, $6::text)), unnest(string_to_array($5::text, $6::text)))
              as u(id, payload, queued)
            returning queue
          )
          select pg_notify('bench_pg_floor_model_wake', q.queue) from (select distinct queue from inserted) q`,
        values: [STEM_NAMESPACE, BENCH_QUEUE, ids, envelopes, queued, SEPARATOR],
      };
    },
    claim: (limit) => ({
      name: 'floor-model-claim',
      text: `with claimable as (
          select id from ${messages}
          where namespace = $2 and queue = $3 and subscriber = '' and concurrency_key is null
            and not_before <= now() and (locked_until is null or locked_until <= now())
          order by priority desc, id limit $1 for update skip locked
        )
        update ${messages} as m
        set locked_until = now() + m.visibility_ms * interval '1 millisecond', locked_by = $4,
          deliveries = m.deliveries + 1, lease = m.lease + 1
        from claimable c where m.id = c.id
        returning m.id, m.task_id, m.payload, m.lease`,
      values: [limit, STEM_NAMESPACE, BENCH_QUEUE, workerId],
    }),
    settle(rows, outcomes) {
      const now = Date.now();
      let statuses = '';
      for (let k = 0; k < rows.length; k++) {
        statuses +=
          `${k === 0 ? '' : SEPARATOR}{"id":"${rows[k]!.task_id}","state":"succeeded","name":"bench.noop","queue":"${BENCH_QUEUE}",` +
          `"attempt":0,"workerId":"${workerId}","updatedAt":${now},"result":${outcomes[k]}}`;
      }
      return {
        name: 'floor-model-settle',
        text: `with acked as (
            delete from ${messages} m using unnest($1::bigint[], $2::int[]) as r(id, lease) where m.id = r.id and m.lease = r.lease
          ),
          written as (
            insert into ${results} (namespace, id, state, status, expires_at, generation, attempt, updated_at)
            select $3, u.id, 'succeeded', u.status::json, now() + $6 * interval '1 millisecond', 0, 0, $7
            from rows from (unnest($4::text[]), unnest(string_to_array($5::text, $8::text))) as u(id, status)
            on conflict (namespace, id) do update
              set state = excluded.state, status = excluded.status, expires_at = excluded.expires_at,
                generation = excluded.generation, attempt = excluded.attempt, updated_at = excluded.updated_at
            returning id, status::text as status
          )
          select count(pg_notify('${doneChannel}', w.id || E'\\n' || w.status)) from written w`,
        values: [
          rows.map((row) => row.id),
          rows.map((row) => row.lease),
          STEM_NAMESPACE,
          rows.map((row) => row.task_id),
          statuses,
          RESULT_TTL_MS,
          now,
          SEPARATOR,
        ],
      };
    },
    remove: (rows) => ({
      name: 'floor-model-delete',
      text: `delete from ${messages} m using unnest($1::bigint[], $2::int[]) as r(id, lease) where m.id = r.id and m.lease = r.lease`,
      values: [rows.map((row) => row.id), rows.map((row) => row.lease)],
    }),
    notifiedId: (payload) => payload.slice(0, payload.indexOf('\n')),
  };
})();

export class PgFloorProducer implements ProducerSide {
  private readonly waiters = new Map<string, () => void>();

  private constructor(
    private readonly shape: FloorShape,
    private readonly pool: pg.Pool,
    private readonly listener: pg.Client,
  ) {
    listener.on('notification', (message) => {
      const id = shape.notifiedId(message.payload ?? '');
      const resolve = this.waiters.get(id);
      this.waiters.delete(id);
      resolve?.();
    });
  }

  /** A producer of the floor of `shape` (the floor's own tables by default). */
  static async open(servers: Servers, shape: FloorShape = minimalTables): Promise<PgFloorProducer> {
    const pool = new pg.Pool({ connectionString: servers.postgresUrl, max: 10 });
    await shape.ensureTables(pool, servers);
    const listener = new pg.Client({ connectionString: servers.postgresUrl });
    await listener.connect();
    await listener.query(`listen ${shape.doneChannel}`);
    return new PgFloorProducer(shape, pool, listener);
  }

  async enqueueOne(payload: BenchPayload, id: string = randomUUID()): Promise<void> {
    await this.pool.query(this.shape.insert([id], [payload]));
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    await this.pool.query(
      this.shape.insert(
        payloads.map(() => randomUUID()),
        payloads,
      ),
    );
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

  private constructor(
    private readonly shape: FloorShape,
    private readonly pool: pg.Pool,
  ) {}

  /** A worker of the floor of `shape` (the floor's own tables by default). */
  static async open(servers: Servers, shape: FloorShape = minimalTables): Promise<PgFloorWorker> {
    const pool = new pg.Pool({ connectionString: servers.postgresUrl, max: 10 });
    await shape.ensureTables(pool, servers);
    return new PgFloorWorker(shape, pool);
  }

  /**
   * Claims batches of up to `concurrency` until `until()` is true and settles each on another
   * pooled connection while the next is claimed (at most SETTLES_IN_FLIGHT settles at once, as
   * Stem's worker overlaps them), reporting each settled batch's size.
   */
  private async loop(concurrency: number, until: () => boolean, onSettled: (count: number) => void): Promise<void> {
    const settling = new Set<Promise<void>>();
    while (!until()) {
      const claimed = await this.pool.query<ClaimedRow>(this.shape.claim(concurrency));
      if (claimed.rows.length === 0) {
        if (settling.size > 0) await Promise.race(settling);
        else await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      const results = claimed.rows.map((row) => startRecorder.started(JSON.parse(row.payload) as BenchPayload));
      const settle: Promise<void> = this.pool
        .query(STORE_RESULTS ? this.shape.settle(claimed.rows, results) : this.shape.remove(claimed.rows))
        .then(() => {
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
