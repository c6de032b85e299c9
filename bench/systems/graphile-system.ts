import { EventEmitter } from 'node:events';
import pg from 'pg';
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import { preciseNow } from '../stats.js';
import {
  GRAPHILE_SCHEMA,
  GRAPHILE_TASK,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/** Connections in graphile-worker's pool: its default, and the same as Stem's Postgres poolSize. */
export const GRAPHILE_POOL_SIZE = 10;

/**
 * graphile-worker's documented high-throughput settings (worker.graphile.org/docs/performance):
 * a local queue that fetches jobs in batches, and batched job completion.
 */
export const GRAPHILE_PRESET = {
  worker: {
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};

/** The pool handed to graphile-worker (with the error handler it asks for). */
function graphilePool(servers: Servers): pg.Pool {
  const pool = new pg.Pool({ connectionString: servers.postgresUrl, max: GRAPHILE_POOL_SIZE });
  pool.on('error', (error) => process.emitWarning(`graphile-worker pool: ${error.message}`));
  pool.on('connect', (client) => client.on('error', (error) => process.emitWarning(`graphile-worker client: ${error.message}`)));
  return pool;
}

const quiet = new Logger(() => () => undefined);
const jobsTable = `"${GRAPHILE_SCHEMA}"._private_jobs`;

/** Resolves once no job row is left (completions are written in batches, after the success event). */
async function untilNoJobs(pool: pg.Pool, id?: string): Promise<void> {
  for (;;) {
    const { rowCount } =
      id === undefined
        ? await pool.query(`select 1 from ${jobsTable} limit 1`)
        : await pool.query(`select 1 from ${jobsTable} where id = $1`, [id]);
    if (!rowCount) return;
  }
}

/**
 * graphile-worker's producer: `addJob`, `addJobs`. It has no result store: a job's row is deleted
 * when it completes, so the round trip waits until the row is gone (polled back to back).
 */
export class GraphileProducer implements ProducerSide {
  private constructor(
    private readonly utils: WorkerUtils,
    private readonly pool: pg.Pool,
  ) {}

  static async open(servers: Servers): Promise<GraphileProducer> {
    const pool = graphilePool(servers);
    const utils = await makeWorkerUtils({ pgPool: pool, schema: GRAPHILE_SCHEMA, logger: quiet });
    await utils.migrate();
    return new GraphileProducer(utils, pool);
  }

  async enqueueOne(payload: BenchPayload): Promise<void> {
    await this.utils.addJob(GRAPHILE_TASK, payload);
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    await this.utils.addJobs(payloads.map((payload) => ({ identifier: GRAPHILE_TASK, payload })));
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const job = await this.utils.addJob(GRAPHILE_TASK, payload);
    await untilNoJobs(this.pool, job.id);
  }

  async close(): Promise<void> {
    await this.utils.release();
    await this.pool.end();
  }
}

/** graphile-worker's runner. A drain ends at the n-th `job:success` once the batched completions are written. */
export class GraphileWorker implements WorkerSide {
  private serving: Runner | undefined;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(servers: Servers): Promise<GraphileWorker> {
    return new GraphileWorker(graphilePool(servers));
  }

  private start(concurrency: number, events: EventEmitter): Promise<Runner> {
    return run({
      pgPool: this.pool,
      schema: GRAPHILE_SCHEMA,
      concurrency,
      noHandleSignals: true,
      logger: quiet,
      events,
      taskList: { [GRAPHILE_TASK]: async (payload) => void startRecorder.started(payload as BenchPayload) },
      preset: GRAPHILE_PRESET,
    });
  }

  async drain(n: number, concurrency: number): Promise<DrainReport> {
    const events = new EventEmitter();
    let succeeded = 0;
    const done = new Promise<void>((resolve) => {
      events.on('job:success', () => {
        succeeded++;
        if (succeeded === n) resolve();
      });
    });
    const started = preciseNow();
    const runner = await this.start(concurrency, events);
    await done;
    await untilNoJobs(this.pool);
    const elapsedMs = preciseNow() - started;
    const memory = process.memoryUsage();
    await runner.stop();
    return { elapsedMs, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
  }

  async serve(concurrency: number): Promise<void> {
    this.serving = await this.start(concurrency, new EventEmitter());
  }

  async stopServing(): Promise<void> {
    await this.serving?.stop();
    this.serving = undefined;
  }

  async close(): Promise<void> {
    await this.stopServing();
    await this.pool.end();
  }
}
