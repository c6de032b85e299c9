import PgBoss from 'pg-boss';
import { preciseNow } from '../stats.js';
import {
  BENCH_QUEUE,
  PGBOSS_SCHEMA,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/** Connections in pg-boss's pool: its default, and the same as Stem's Postgres poolSize. */
export const PGBOSS_POOL_SIZE = 10;

/**
 * pg-boss 10 (the last line that runs on Node 20) at its documented settings for throughput: the
 * shortest polling interval it accepts (0.5 s; it has no LISTEN wake-up) and jobs fetched in
 * batches (`batchSize`, the handler gets the batch). The batch is the concurrency: one `work` loop
 * with batchSize = the bench's concurrency keeps as many jobs in flight as the other systems.
 */
export const PGBOSS_POLLING_SECONDS = 0.5;

async function openBoss(servers: Servers, worker: boolean): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: servers.postgresUrl,
    schema: PGBOSS_SCHEMA,
    max: PGBOSS_POOL_SIZE,
    // The producer does no maintenance (as graphile-worker's WorkerUtils); the worker keeps its defaults.
    supervise: worker,
    schedule: false,
  });
  boss.on('error', (error) => process.emitWarning(`pg-boss: ${error.message}`));
  await boss.start();
  await boss.createQueue(BENCH_QUEUE);
  return boss;
}

/** pg-boss's producer: `send`, `insert`; a round trip waits until the job reads completed (polled back to back). */
export class PgBossProducer implements ProducerSide {
  private constructor(private readonly boss: PgBoss) {}

  static async open(servers: Servers): Promise<PgBossProducer> {
    return new PgBossProducer(await openBoss(servers, false));
  }

  async enqueueOne(payload: BenchPayload): Promise<void> {
    await this.boss.send(BENCH_QUEUE, payload);
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    await this.boss.insert(payloads.map((data) => ({ name: BENCH_QUEUE, data })));
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const id = await this.boss.send(BENCH_QUEUE, payload);
    if (id === null) throw new Error('pg-boss: send returned no id');
    for (;;) {
      const job = await this.boss.getJobById(BENCH_QUEUE, id);
      if (job?.state === 'completed') return;
    }
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true });
  }
}

/** pg-boss's worker: one `work` loop fetching batches of `concurrency`. A drain ends when n jobs read completed. */
export class PgBossWorker implements WorkerSide {
  private serving: string | undefined;

  private constructor(private readonly boss: PgBoss) {}

  static async open(servers: Servers): Promise<PgBossWorker> {
    return new PgBossWorker(await openBoss(servers, true));
  }

  private start(concurrency: number, onDone?: (count: number) => void): Promise<string> {
    return this.boss.work<BenchPayload>(
      BENCH_QUEUE,
      { batchSize: concurrency, pollingIntervalSeconds: PGBOSS_POLLING_SECONDS },
      async (jobs) => {
        const results = await Promise.all(jobs.map(async (job) => startRecorder.started(job.data)));
        onDone?.(jobs.length);
        return results;
      },
    );
  }

  async drain(n: number, concurrency: number): Promise<DrainReport> {
    let handled = 0;
    const started = preciseNow();
    const handledAll = new Promise<void>((resolve) => {
      void this.start(concurrency, (count) => {
        handled += count;
        if (handled >= n) resolve();
      }).then((id) => (this.serving = id));
    });
    await handledAll;
    // pg-boss completes a batch after its handler resolves, without awaiting it: wait for the rows.
    while ((await this.boss.getQueueSize(BENCH_QUEUE, { before: 'completed' })) > 0) await new Promise((r) => setTimeout(r, 5));
    const elapsedMs = preciseNow() - started;
    const memory = process.memoryUsage();
    await this.stopServing();
    return { elapsedMs, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
  }

  async serve(concurrency: number): Promise<void> {
    this.serving = await this.start(concurrency);
  }

  async stopServing(): Promise<void> {
    if (this.serving !== undefined) await this.boss.offWork({ id: this.serving });
    this.serving = undefined;
  }

  async close(): Promise<void> {
    await this.stopServing();
    await this.boss.stop({ graceful: false, wait: true });
  }
}
