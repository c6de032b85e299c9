import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  BENCH_QUEUE,
  drainCounted,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/** The floor's key prefix (flushed with the other systems' keys). */
export const FLOOR_PREFIX = 'benchfloor';
/** Its stream, consumer group, result keys and the channel a finished task's id is published on. */
const STREAM = `${FLOOR_PREFIX}:${BENCH_QUEUE}`;
const GROUP = 'workers';
const RESULT = `${FLOOR_PREFIX}:res:`;
const DONE_CHANNEL = `${FLOOR_PREFIX}:done`;
/** Stem's default result TTL (1 day), kept by the floor too. */
const RESULT_TTL_MS = 86_400_000;
/** Entries read per XREADGROUP, as in the raw loop the issue measured. */
const READ_BATCH = 500;

/**
 * The physical floor on Redis (#28): the same workloads with no framework at all. Enqueue is one
 * pipeline of XADD (the task) and SET (its queued state, with the result TTL) per task; a worker
 * reads the stream in batches of 500 with XREADGROUP, runs the same handler body, and settles the
 * batch in one pipeline: SET of each result (same TTL), PUBLISH of each finished id, XACK and XDEL.
 * No leases, retries, routing, state order or revokes: what is left is Redis and the network, so
 * every Stem row can be read as a fraction of what this machine allows.
 */
export class FloorProducer implements ProducerSide {
  private readonly waiters = new Map<string, () => void>();

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
  ) {
    subscriber.on('message', (_channel: string, id: string) => {
      const resolve = this.waiters.get(id);
      this.waiters.delete(id);
      resolve?.();
    });
  }

  static async open(servers: Servers): Promise<FloorProducer> {
    const redis = new Redis(servers.redisUrl);
    const subscriber = new Redis(servers.redisUrl);
    await subscriber.subscribe(DONE_CHANNEL);
    return new FloorProducer(redis, subscriber);
  }

  private add(pipeline: ReturnType<Redis['pipeline']>, payload: BenchPayload, id = randomUUID()): string {
    pipeline.xadd(STREAM, '*', 'id', id, 'p', JSON.stringify(payload));
    pipeline.set(RESULT + id, '{"state":"queued"}', 'PX', RESULT_TTL_MS);
    return id;
  }

  async enqueueOne(payload: BenchPayload): Promise<void> {
    const pipeline = this.redis.pipeline();
    this.add(pipeline, payload);
    await pipeline.exec();
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const payload of payloads) this.add(pipeline, payload);
    await pipeline.exec();
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const id = randomUUID();
    const done = new Promise<void>((resolve) => this.waiters.set(id, resolve));
    const pipeline = this.redis.pipeline();
    this.add(pipeline, payload, id);
    await pipeline.exec();
    await done;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

/** The floor's worker: the raw XREADGROUP loop described on FloorProducer. */
export class FloorWorker implements WorkerSide {
  private serving: { stop: () => void; loop: Promise<void> } | undefined;

  private constructor(private readonly servers: Servers) {}

  static async open(servers: Servers): Promise<FloorWorker> {
    return new FloorWorker(servers);
  }

  /** A connection with the consumer group in place (the harness flushes keys between runs, the group with them). */
  private async connect(): Promise<Redis> {
    const redis = new Redis(this.servers.redisUrl);
    try {
      await redis.xgroup('CREATE', STREAM, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
    return redis;
  }

  /** Reads and settles batches until `until()` is true, reporting each batch's size. */
  private async loop(redis: Redis, until: () => boolean, onSettled: (count: number) => void): Promise<void> {
    const consumer = `floor-${process.pid}`;
    while (!until()) {
      const reply = (await redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', READ_BATCH, 'BLOCK', 100, 'STREAMS', STREAM, '>')) as Array<
        [string, Array<[string, string[]]>]
      > | null;
      const entries = reply?.[0]?.[1];
      if (!entries || entries.length === 0) continue;
      const pipeline = redis.pipeline();
      const ids: string[] = [];
      for (const [entryId, fields] of entries) {
        const id = fields[1]!;
        const started = startRecorder.started(JSON.parse(fields[3]!) as BenchPayload);
        pipeline.set(RESULT + id, JSON.stringify({ state: 'succeeded', result: started }), 'PX', RESULT_TTL_MS);
        pipeline.publish(DONE_CHANNEL, id);
        ids.push(entryId);
      }
      pipeline.xack(STREAM, GROUP, ...ids);
      pipeline.xdel(STREAM, ...ids);
      await pipeline.exec();
      onSettled(entries.length);
    }
  }

  async drain(n: number): Promise<DrainReport> {
    const redis = await this.connect();
    const report = await drainCounted(n, (until, onSettled) => this.loop(redis, until, onSettled));
    redis.disconnect();
    return report;
  }

  async serve(): Promise<void> {
    const redis = await this.connect();
    let stopped = false;
    const loop = this.loop(
      redis,
      () => stopped,
      () => {},
    ).finally(() => redis.disconnect());
    this.serving = { stop: () => (stopped = true), loop };
  }

  async stopServing(): Promise<void> {
    this.serving?.stop();
    await this.serving?.loop;
    this.serving = undefined;
  }

  async close(): Promise<void> {
    await this.stopServing();
  }
}
