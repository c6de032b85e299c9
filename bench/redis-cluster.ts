// Enqueue and processing throughput on a 3-master Redis Cluster beside one Redis server, in the same
// run on the same machine: `npm run bench -- --only 13` (workload 13), or `npx tsx bench/redis-cluster.ts`
// for the markdown table alone. Starts its own servers (cluster on 127.0.0.1:7100-7105, the single
// server on 7300) and stops them after. Tasks go to QUEUES queues, whose hash tags spread them over the masters.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { redis } from '../plugins/redis/index.js';
import { defineTask, Stem } from '../sdk/index.js';
import { OwnedRedisServer } from '../test/chaos/owned-redis-server.js';
import { RedisClusterTopology } from '../test/helpers/redis-topologies.js';
import type { ResultRow } from './bench-report.js';

const QUEUES = Array.from({ length: Number(process.env.BENCH_CLUSTER_QUEUES ?? 6) }, (_, i) => `bench-${i}`);
const ENQUEUE_N = Number(process.env.BENCH_CLUSTER_ENQUEUE_N ?? 30_000);
const PROCESS_N = Number(process.env.BENCH_CLUSTER_PROCESS_N ?? 20_000);
const WORKERS = Number(process.env.BENCH_CLUSTER_WORKERS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CLUSTER_CONCURRENCY ?? 32);
const PASSES = Number(process.env.BENCH_CLUSTER_PASSES ?? 3);
const BATCH = 1_000;
const noop = defineTask({ name: 'bench.noop', handler: async () => 1 });

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Enqueues `n` tasks in batches of 1,000, round-robin over the queues; tasks/s. */
async function enqueueRate(stem: Stem, n: number): Promise<number> {
  const started = performance.now();
  for (let sent = 0; sent < n; sent += BATCH) {
    const size = Math.min(BATCH, n - sent);
    await stem.enqueueMany(
      Array.from({ length: size }, (_, i) => ({ task: noop, args: {}, options: { queue: QUEUES[(sent + i) % QUEUES.length]! } })),
    );
  }
  return n / ((performance.now() - started) / 1_000);
}

/** A worker process and the number of tasks it said it finished. */
interface WorkerChild {
  child: ChildProcess;
  done: number;
}

function startWorker(url: string, namespace: string): Promise<WorkerChild> {
  const child = spawn(
    process.execPath,
    ['--import=tsx', new URL('./redis-cluster-worker.ts', import.meta.url).pathname, url, namespace, QUEUES.join(','), String(CONCURRENCY)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const worker: WorkerChild = { child, done: 0 };
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited (${code})`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line === 'ready') resolve(worker);
        else if (line.startsWith('done ')) worker.done = Number(line.slice(5));
      }
    });
  });
}

/**
 * Starts the workers (idle), then enqueues `n` tasks in bulk and measures until the workers have
 * finished `n` tasks: producer and workers at once, end to end; tasks/s.
 */
async function processRate(url: string, n: number): Promise<number> {
  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  const stem = await Stem.create({ tasks: [noop], plugins: [redis({ url, namespace })] });
  const workers = await Promise.all(Array.from({ length: WORKERS }, () => startWorker(url, namespace)));
  try {
    const started = performance.now();
    await enqueueRate(stem, n);
    while (workers.reduce((sum, worker) => sum + worker.done, 0) < n) await new Promise((resolve) => setTimeout(resolve, 10));
    return n / ((performance.now() - started) / 1_000);
  } finally {
    for (const worker of workers) {
      worker.child.removeAllListeners('exit');
      worker.child.kill('SIGTERM');
    }
    await stem.close();
  }
}

async function measure(label: string, url: string): Promise<{ label: string; enqueue: number; process: number }> {
  const enqueue: number[] = [];
  const processing: number[] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    const stem = await Stem.create({ tasks: [noop], plugins: [redis({ url, namespace: `bench-${randomBytes(3).toString('hex')}` })] });
    try {
      enqueue.push(await enqueueRate(stem, ENQUEUE_N));
    } finally {
      await stem.close();
    }
    processing.push(await processRate(url, PROCESS_N));
    console.error(`${label} pass ${pass + 1}: enqueue ${Math.round(enqueue.at(-1)!)}/s, process ${Math.round(processing.at(-1)!)}/s`);
  }
  return { label, enqueue: median(enqueue), process: median(processing) };
}

/** Enqueue and end-to-end rates of one Redis and of the 3-master cluster, measured in one run. */
async function measureBoth(): Promise<Array<{ label: string; enqueue: number; process: number }>> {
  const single = await OwnedRedisServer.start(7300);
  try {
    const cluster = await RedisClusterTopology.start({ basePort: 7100, masters: 3 });
    try {
      return [await measure('1 Redis', single.url), await measure('cluster, 3 masters', cluster.url)];
    } finally {
      await cluster.stop();
    }
  } finally {
    await single.stop();
  }
}

const WORKLOAD_13 = `13 redis cluster: ${QUEUES.length} queues over 3 masters vs 1 Redis`;

/** The rows workload 13 adds to `npm run bench`: Stem on the cluster (stem) against Stem on one Redis (peer). */
export function clusterRowShapes(): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  return [
    { workload: WORKLOAD_13, metric: 'enqueue, bulk of 1,000', unit: 'tasks/s', better: 'higher', peerName: 'stem on 1 redis' },
    {
      workload: WORKLOAD_13,
      metric: `enqueue + process, ${WORKERS} workers × ${CONCURRENCY}`,
      unit: 'tasks/s',
      better: 'higher',
      peerName: 'stem on 1 redis',
    },
  ];
}

/** Measures workload 13 (servers of its own on ports 7100-7105 and 7300, stopped after). */
export async function clusterRows(): Promise<ResultRow[]> {
  const [single, cluster] = await measureBoth();
  const [enqueueShape, processShape] = clusterRowShapes();
  return [
    { ...enqueueShape!, stem: cluster!.enqueue, peer: single!.enqueue, runs: PASSES },
    { ...processShape!, stem: cluster!.process, peer: single!.process, runs: PASSES },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await measureBoth();
  console.log(
    `| topology | enqueue in bulk of 1,000 (tasks/s) | enqueue ${PROCESS_N.toLocaleString('en-US')} in bulk while ${WORKERS} workers × ${CONCURRENCY} process them, end to end (tasks/s) |`,
  );
  console.log('|---|---|---|');
  for (const row of rows)
    console.log(
      `| ${row.label} | ${Math.round(row.enqueue).toLocaleString('en-US')} | ${Math.round(row.process).toLocaleString('en-US')} |`,
    );
  console.log(`\n${QUEUES.length} queues, median of ${PASSES} passes; machine: ${(await import('node:os')).cpus().length} cores.`);
}
