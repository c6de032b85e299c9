// Shared by the canvas tests: the same scenarios run on memory and on a real Redis.
import type { Test } from 'tap';
import { Stem, type StemPlugin, type TaskDefinition, type Worker, type WorkerOptions } from '../../sdk/index.js';
import { canvas } from '../../plugins/canvas/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { dropSchema, requirePostgres, testUrl as POSTGRES_URL, uniqueSchema } from '../postgres/postgres-harness.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';

/** The backends a scenario runs on. */
export type BackendName = 'memory' | 'redis' | 'postgres';

/** The backends to run on: memory always; Redis and Postgres when they answer (else skipped loudly, or failed with CI=true). */
export async function availableBackends(t: Test): Promise<BackendName[]> {
  const backends: BackendName[] = ['memory'];
  if (await requireRedis(t)) backends.push('redis');
  if (await requirePostgres(t)) backends.push('postgres');
  return backends;
}

/** Stems that share one broker and backend: one producer plus as many worker "processes" as a test starts. */
export interface Cluster {
  /** Which backend it runs on. */
  backend: BackendName;
  /** The producer. */
  stem: Stem;
  /** On Redis: the service URL of this cluster (with its `?namespace=`), for the CLI and child processes. */
  redisUrl: string;
  /** Another process on the same broker and backend: a fresh Stem on Redis or Postgres; on memory, the producer itself (memory is one process). */
  another(): Promise<Stem>;
  /** Starts a worker in another process (see `another`). */
  startWorker(options?: WorkerOptions): Promise<Worker>;
}

/** Opens a cluster knowing `tasks`, with the canvas plugin everywhere; everything is closed and deleted at teardown. */
export async function openCluster(t: Test, backend: BackendName, tasks: TaskDefinition[]): Promise<Cluster> {
  const namespace = testNamespace('canvas');
  const schema = uniqueSchema('canvas');
  const stems: Stem[] = [];
  const transport = (): StemPlugin[] => {
    if (backend === 'redis') return [redis({ url: REDIS_URL, namespace, blockMs: 200 })];
    if (backend === 'postgres') return [postgres({ url: POSTGRES_URL, schema, pollIntervalMs: 200 })];
    return [];
  };
  const create = async (): Promise<Stem> => {
    const plugins = [...transport(), canvas()];
    const stem = await Stem.create({ tasks, plugins });
    stems.push(stem);
    return stem;
  };
  const stem = await create();
  t.teardown(async () => {
    for (const opened of stems.reverse()) await opened.close();
    if (backend === 'redis') await deleteNamespace(namespace);
    if (backend === 'postgres') await dropSchema(schema);
  });
  const another = (): Promise<Stem> => (backend === 'memory' ? Promise.resolve(stem) : create());
  return {
    backend,
    stem,
    redisUrl: `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}namespace=${namespace}`,
    another,
    async startWorker(options = {}) {
      const worker = (await another()).worker({ concurrency: 8, ...options });
      await worker.start();
      return worker;
    },
  };
}

/** Counts calls by key: how many times each callback ran. */
export class CallCounter {
  private readonly counts = new Map<string, number>();

  /** Counts one call of `key`. */
  hit(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** How many times `key` was counted. */
  of(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Keys counted more than once. */
  repeated(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([key]) => key);
  }

  /** How many distinct keys were counted. */
  get size(): number {
    return this.counts.size;
  }
}
