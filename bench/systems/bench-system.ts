import { preciseNow } from '../stats.js';

/** The payload of every benchmark task, on every system: an index and the enqueue time. */
export interface BenchPayload {
  /** The task's index; negative for warm-up tasks (their latencies are not recorded). */
  i: number;
  /** Epoch ms (sub-ms precision) when the producer enqueued it. */
  t0: number;
}

/** The queue every system uses (BullMQ queue name, Stem queue; graphile-worker has no named queue so jobs run in parallel). */
export const BENCH_QUEUE = 'bench';
/** Stem's Redis namespace in the benchmark. */
export const STEM_NAMESPACE = 'benchstem';
/** BullMQ's key prefix in the benchmark. */
export const BULLMQ_PREFIX = 'benchbull';
/** Postgres schemas, dropped when the run ends. */
export const STEM_SCHEMA = 'bench_stem';
export const GRAPHILE_SCHEMA = 'bench_graphile';
export const PGBOSS_SCHEMA = 'bench_pgboss';
export const PG_FLOOR_SCHEMA = 'bench_pgfloor';
/** The Postgres floor on Stem's tables (bench/systems/pg-floor-system.ts `stemTables`). */
export const PG_FLOOR_MODEL_SCHEMA = 'bench_pgfloor_model';
/** graphile-worker's task identifier. */
export const GRAPHILE_TASK = 'bench_noop';

/** The systems the harness knows. */
export type SystemId =
  | 'stem-redis'
  | 'stem-redis-telemetry'
  | 'bullmq'
  | 'redis-floor'
  | 'stem-postgres'
  | 'stem-postgres-ignore'
  | 'graphile-worker'
  | 'pg-boss'
  | 'postgres-floor'
  | 'postgres-floor-model';

/** Where the servers are. */
export interface Servers {
  redisUrl: string;
  postgresUrl: string;
}

/** The producer half of a system, run in a child process. */
export interface ProducerSide {
  /** Enqueues one task and waits until the enqueue call resolves. */
  enqueueOne(payload: BenchPayload): Promise<void>;
  /** Enqueues a batch in the system's bulk call. */
  enqueueBulk(payloads: BenchPayload[]): Promise<void>;
  /** Enqueues one task and resolves once its outcome is visible to the producer. */
  roundTrip(payload: BenchPayload): Promise<void>;
  /** Enqueues a batch of delayed tasks in the bulk call, each due at its payload's `t0` (integer epoch ms). */
  enqueueDelayed?(payloads: BenchPayload[]): Promise<void>;
  close(): Promise<void>;
}

/** What a drain reports. */
export interface DrainReport {
  elapsedMs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

/**
 * A floor's drain: runs `loop` (until its first argument says stop; its second counts settled
 * tasks) until `n` are settled, and reports the time and the memory at that moment.
 */
export async function drainCounted(
  n: number,
  loop: (until: () => boolean, onSettled: (count: number) => void) => Promise<void>,
): Promise<DrainReport> {
  let settled = 0;
  const started = preciseNow();
  await loop(
    () => settled >= n,
    (count) => {
      settled += count;
    },
  );
  const elapsedMs = preciseNow() - started;
  const memory = process.memoryUsage();
  return { elapsedMs, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
}

/** The worker half of a system, run in a child process. */
export interface WorkerSide {
  /** Starts a worker on a pre-filled queue, waits until `n` outcomes are persisted, stops it. */
  drain(n: number, concurrency: number): Promise<DrainReport>;
  /** Starts a worker that stays up until stopServing. */
  serve(concurrency: number): Promise<void>;
  stopServing(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The handler body shared by every system: note the start latency of a measured task (when
 * recording) and return the start time, which the result backend stores.
 */
export class StartRecorder {
  private samples: number[] | undefined;

  /** Starts collecting enqueue → handler start latencies. */
  begin(): void {
    this.samples = [];
  }

  /** How many measured tasks started since begin(). */
  count(): number {
    return this.samples?.length ?? 0;
  }

  /** Stops collecting and returns what was collected. */
  end(): number[] {
    const samples = this.samples ?? [];
    this.samples = undefined;
    return samples;
  }

  /** Called first thing in each handler. */
  started(payload: BenchPayload): number {
    const now = preciseNow();
    if (this.samples !== undefined && payload.i >= 0) this.samples.push(now - payload.t0);
    return now;
  }
}

/** The recorder of this process (one system per child process). */
export const startRecorder = new StartRecorder();

/** Reads host, port and db index from a redis:// URL for BullMQ's connection options. */
export function redisConnectionOptions(url: string): { host: string; port: number; db: number; password?: string } {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.replace(/^\//, '') || 0);
  const options: { host: string; port: number; db: number; password?: string } = {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 6379),
    db,
  };
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  return options;
}
