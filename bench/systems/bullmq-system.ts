import { Queue, QueueEvents, Worker, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { preciseNow } from '../stats.js';
import {
  BENCH_QUEUE,
  BULLMQ_PREFIX,
  redisConnectionOptions,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/** The job name of the no-op task. */
const JOB_NAME = 'noop';

/**
 * Stem keeps a result for its result TTL (1 day by default), then Redis expires it. The BullMQ
 * equivalent is to keep completed (and failed) jobs, with their return value, for a day:
 * `removeOnComplete: { age: 86400 }` (seconds), trimmed by BullMQ as jobs complete.
 */
export const BULLMQ_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: { age: 86_400 },
  removeOnFail: { age: 86_400 },
};

function connection(servers: Servers): ConnectionOptions {
  // BullMQ asks for maxRetriesPerRequest: null on worker (blocking) connections.
  return { ...redisConnectionOptions(servers.redisUrl), maxRetriesPerRequest: null };
}

/** BullMQ's producer: `add`, `addBulk`, and `job.waitUntilFinished(queueEvents)` for the round trip. */
export class BullmqProducer implements ProducerSide {
  private constructor(
    private readonly queue: Queue,
    private readonly events: QueueEvents,
  ) {}

  static async open(servers: Servers): Promise<BullmqProducer> {
    const queue = new Queue(BENCH_QUEUE, { connection: connection(servers), prefix: BULLMQ_PREFIX, defaultJobOptions: BULLMQ_JOB_OPTIONS });
    const events = new QueueEvents(BENCH_QUEUE, { connection: connection(servers), prefix: BULLMQ_PREFIX });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new BullmqProducer(queue, events);
  }

  async enqueueOne(payload: BenchPayload): Promise<void> {
    await this.queue.add(JOB_NAME, payload);
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    await this.queue.addBulk(payloads.map((data) => ({ name: JOB_NAME, data })));
  }

  async enqueueDelayed(payloads: BenchPayload[]): Promise<void> {
    // BullMQ's due time is the job's timestamp (taken as it is built) plus its delay
    const now = Date.now();
    await this.queue.addBulk(payloads.map((data) => ({ name: JOB_NAME, data, opts: { delay: Math.max(0, data.t0 - now) } })));
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const job = await this.queue.add(JOB_NAME, payload);
    await job.waitUntilFinished(this.events, 30_000);
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.close();
  }
}

/** BullMQ's worker. A drain ends at the n-th `completed` event, emitted after the job was moved to completed (return value stored). */
export class BullmqWorker implements WorkerSide {
  private serving: Worker | undefined;

  private constructor(private readonly servers: Servers) {}

  static async open(servers: Servers): Promise<BullmqWorker> {
    return new BullmqWorker(servers);
  }

  private async makeWorker(concurrency: number): Promise<Worker> {
    const worker = new Worker(BENCH_QUEUE, async (job) => startRecorder.started(job.data as BenchPayload), {
      connection: connection(this.servers),
      prefix: BULLMQ_PREFIX,
      concurrency,
      autorun: false,
    });
    worker.on('error', (error) => process.emitWarning(`bullmq worker: ${error.message}`));
    await worker.waitUntilReady();
    return worker;
  }

  async drain(n: number, concurrency: number): Promise<DrainReport> {
    const worker = await this.makeWorker(concurrency);
    let completed = 0;
    const done = new Promise<void>((resolve) => {
      worker.on('completed', () => {
        completed++;
        if (completed === n) resolve();
      });
    });
    const started = preciseNow();
    const running = worker.run();
    await done;
    const elapsedMs = preciseNow() - started;
    const memory = process.memoryUsage();
    await worker.close();
    await running;
    return { elapsedMs, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
  }

  async serve(concurrency: number): Promise<void> {
    this.serving = await this.makeWorker(concurrency);
    void this.serving.run();
  }

  async stopServing(): Promise<void> {
    await this.serving?.close();
    this.serving = undefined;
  }

  async close(): Promise<void> {
    await this.stopServing();
  }
}
