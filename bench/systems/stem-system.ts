import type { Delivery } from '../../sdk/contracts/broker.js';
import type { Stem, StemPlugin } from '../../sdk/index.js';
import { preciseNow } from '../stats.js';
import {
  BENCH_QUEUE,
  STEM_NAMESPACE,
  STEM_SCHEMA,
  startRecorder,
  type BenchPayload,
  type DrainReport,
  type ProducerSide,
  type Servers,
  type WorkerSide,
} from './bench-system.js';

/**
 * Where Stem is loaded from: the compiled package in dist/, as an application that installed it
 * runs it (`npm run bench` builds it first), or with BENCH_STEM_SOURCE=1 the TypeScript source
 * through tsx, whose transformed modules and source maps add ~8 MB to a worker's RSS (workload 6).
 */
const STEM_ROOT = process.env.BENCH_STEM_SOURCE === '1' ? '../../' : '../../dist/';

/** Imports `path` (relative to the repository root) from STEM_ROOT. */
async function fromStem<T>(path: string): Promise<T> {
  try {
    return (await import(`${STEM_ROOT}${path}`)) as T;
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(`bench: ${STEM_ROOT}${path} is missing; run \`npm run build\` first (npm run bench does)`);
  }
}

const sdk = await fromStem<typeof import('../../sdk/index.js')>('sdk/index.js');

/** The no-op task: its result (the start time) is stored by the result backend. */
const noop = sdk.defineTask({
  name: 'bench.noop',
  options: { queue: BENCH_QUEUE },
  handler: async (payload: BenchPayload) => startRecorder.started(payload),
});

/** Where Stem keeps its tasks in the benchmark. */
export type StemStore = 'redis' | 'postgres';

/** The telemetry plugin, loaded only when asked for (it is developed alongside). */
async function telemetryPlugin(): Promise<StemPlugin> {
  const loaded = await fromStem<{ telemetry?: () => StemPlugin }>('plugins/telemetry/index.js');
  if (typeof loaded.telemetry !== 'function') throw new Error('plugins/telemetry does not export telemetry()');
  return loaded.telemetry();
}

async function createStem(store: StemStore, servers: Servers, withTelemetry: boolean): Promise<Stem> {
  // Only the plugin of this store is loaded, as in an application that uses one.
  const plugins: StemPlugin[] = [
    store === 'redis'
      ? (await fromStem<typeof import('../../plugins/redis/index.js')>('plugins/redis/index.js')).redis({
          url: servers.redisUrl,
          namespace: STEM_NAMESPACE,
        })
      : (await fromStem<typeof import('../../plugins/postgres/index.js')>('plugins/postgres/index.js')).postgres({
          url: servers.postgresUrl,
          schema: STEM_SCHEMA,
        }),
  ];
  if (withTelemetry) plugins.push(await telemetryPlugin());
  return sdk.Stem.create({ plugins, tasks: [noop] });
}

/**
 * Stem's producer: `enqueue`, `enqueueMany`, and `handle.result()` for the round trip. With
 * `ignoreResult`, every task is enqueued fire and forget (no state at all: graphile-worker keeps
 * none either).
 */
export class StemProducer implements ProducerSide {
  private readonly options: { ignoreResult?: boolean };

  private constructor(
    private readonly stem: Stem,
    ignoreResult: boolean,
  ) {
    this.options = ignoreResult ? { ignoreResult: true } : {};
  }

  static async open(store: StemStore, servers: Servers, options: { ignoreResult?: boolean } = {}): Promise<StemProducer> {
    return new StemProducer(await createStem(store, servers, false), options.ignoreResult === true);
  }

  async enqueueOne(payload: BenchPayload): Promise<void> {
    await this.stem.enqueue(noop, payload, this.options);
  }

  async enqueueBulk(payloads: BenchPayload[]): Promise<void> {
    await this.stem.enqueueMany(payloads.map((args) => ({ task: noop, args, options: this.options })));
  }

  async enqueueDelayed(payloads: BenchPayload[]): Promise<void> {
    await this.stem.enqueueMany(payloads.map((args) => ({ task: noop, args, options: { notBefore: new Date(args.t0) } })));
  }

  async roundTrip(payload: BenchPayload): Promise<void> {
    const handle = await this.stem.enqueue(noop, payload);
    await handle.result({ timeoutMs: 30_000 });
  }

  close(): Promise<void> {
    return this.stem.close();
  }
}

/**
 * Stem's worker. A drain ends when the broker has acknowledged `n` deliveries: the worker acks a
 * batch only after its result states are written, so that is "n results persisted".
 */
export class StemWorker implements WorkerSide {
  private onAcked: ((count: number) => void) | undefined;
  private serving: ReturnType<Stem['worker']> | undefined;

  private constructor(private readonly stem: Stem) {
    const broker = stem.broker;
    const ack = broker.ack.bind(broker);
    broker.ack = async (deliveries: readonly Delivery[]): Promise<void> => {
      await ack(deliveries);
      this.onAcked?.(deliveries.length);
    };
    // Where the broker settles states and acks in one call, count those acks too.
    const ackWithStates = broker.ackWithStates?.bind(broker);
    if (ackWithStates) {
      broker.ackWithStates = async (backend, statuses, ttlMs, deliveries) => {
        const settled = await ackWithStates(backend, statuses, ttlMs, deliveries);
        if (settled) this.onAcked?.(deliveries.length);
        return settled;
      };
    }
  }

  static async open(store: StemStore, servers: Servers, withTelemetry: boolean): Promise<StemWorker> {
    return new StemWorker(await createStem(store, servers, withTelemetry));
  }

  async drain(n: number, concurrency: number): Promise<DrainReport> {
    let acked = 0;
    const done = new Promise<void>((resolve) => {
      this.onAcked = (count) => {
        acked += count;
        if (acked >= n) resolve();
      };
    });
    const worker = this.stem.worker({ queues: [BENCH_QUEUE], concurrency });
    const started = preciseNow();
    await worker.start();
    await done;
    const elapsedMs = preciseNow() - started;
    const memory = process.memoryUsage();
    this.onAcked = undefined;
    await worker.stop();
    return { elapsedMs, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
  }

  async serve(concurrency: number): Promise<void> {
    this.serving = this.stem.worker({ queues: [BENCH_QUEUE], concurrency });
    await this.serving.start();
  }

  async stopServing(): Promise<void> {
    await this.serving?.stop();
    this.serving = undefined;
  }

  close(): Promise<void> {
    return this.stem.close();
  }
}
