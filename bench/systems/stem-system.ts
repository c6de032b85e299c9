import type { Delivery } from '../../sdk/contracts/broker.js';
import { Stem, defineTask, type StemPlugin } from '../../sdk/index.js';
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

/** The no-op task: its result (the start time) is stored by the result backend. */
const noop = defineTask({
  name: 'bench.noop',
  options: { queue: BENCH_QUEUE },
  handler: async (payload: BenchPayload) => startRecorder.started(payload),
});

/** Where Stem keeps its tasks in the benchmark. */
export type StemStore = 'redis' | 'postgres';

/** The telemetry plugin, loaded only when asked for (it is developed alongside). */
async function telemetryPlugin(): Promise<StemPlugin> {
  const modulePath = '../../plugins/telemetry/index.js';
  const loaded = (await import(modulePath)) as { telemetry?: () => StemPlugin };
  if (typeof loaded.telemetry !== 'function') throw new Error('plugins/telemetry does not export telemetry()');
  return loaded.telemetry();
}

async function createStem(store: StemStore, servers: Servers, withTelemetry: boolean): Promise<Stem> {
  // Only the plugin of this store is loaded, as in an application that uses one.
  const plugins: StemPlugin[] = [
    store === 'redis'
      ? (await import('../../plugins/redis/index.js')).redis({ url: servers.redisUrl, namespace: STEM_NAMESPACE })
      : (await import('../../plugins/postgres/index.js')).postgres({ url: servers.postgresUrl, schema: STEM_SCHEMA }),
  ];
  if (withTelemetry) plugins.push(await telemetryPlugin());
  return Stem.create({ plugins, tasks: [noop] });
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
