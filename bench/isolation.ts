// Workload 11 of `npm run bench` (and on its own: `npx tsx bench/isolation.ts [n] [concurrency]`): the
// cost of running a no-op task in a worker thread or a child process instead of on the worker's event
// loop, for Stem (isolation plugin) and for BullMQ (sandboxed processors, child processes and worker
// threads), on the same Redis in one run. Each system drains n pre-enqueued no-op tasks with
// `concurrency` slots and as many warm children; a warm-up drain of 100 tasks runs first, untimed.
// The numbers are in docs/isolation.md.
import { pathToFileURL } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { isolation } from '../plugins/isolation/index.js';
import { redis } from '../plugins/redis/index.js';
import { Stem } from '../sdk/index.js';
import type { ResultRow } from './bench-report.js';
import { noop } from './isolation-tasks.js';

let REDIS_URL = process.env.STEM_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12';
let n = 2000;
let concurrency = 8;
const WARM_UP = 100;

async function stemDrain(pool: 'threads' | 'processes' | undefined): Promise<number> {
  const namespace = `bench-iso-${Math.random().toString(36).slice(2, 8)}`;
  const plugins = [redis({ url: REDIS_URL, namespace })];
  if (pool) plugins.push(isolation({ pool, min: concurrency, max: concurrency }) as never);
  const stem = await Stem.create({ plugins, tasks: [noop] });
  const drain = async (count: number): Promise<number> => {
    await stem.enqueueMany(Array.from({ length: count }, () => ({ task: noop, args: {} })));
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const off = stem.signals.on('task-succeeded', () => {
      if (++done === count) finish();
    });
    const started = performance.now();
    const worker = stem.worker({ concurrency });
    await worker.start();
    await finished;
    const seconds = (performance.now() - started) / 1000;
    off();
    await worker.stop();
    return count / seconds;
  };
  await drain(WARM_UP);
  const rate = await drain(n);
  await stem.close();
  await cleanUp([`${namespace}:*`, `{${namespace}:*`]);
  return rate;
}

async function bullmqDrain(mode: 'inline' | 'process' | 'thread'): Promise<number> {
  const prefix = `bench-iso-bull-${Math.random().toString(36).slice(2, 8)}`;
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix });
  const processor = mode === 'inline' ? async () => 1 : new URL('./isolation-noop-processor.cjs', import.meta.url).pathname;
  const drain = async (count: number): Promise<number> => {
    await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } })));
    const worker = new Worker('noop', processor, {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      prefix,
      concurrency,
      autorun: false,
      useWorkerThreads: mode === 'thread',
    });
    let done = 0;
    const finished = new Promise<void>((resolve) =>
      worker.on('completed', () => {
        if (++done === count) resolve();
      }),
    );
    await worker.waitUntilReady();
    const started = performance.now();
    void worker.run();
    await finished;
    const seconds = (performance.now() - started) / 1000;
    await worker.close();
    return count / seconds;
  };
  await drain(WARM_UP);
  const rate = await drain(n);
  await queue.close();
  connection.disconnect();
  await cleanUp([`${prefix}:*`]);
  return rate;
}

async function cleanUp(patterns: string[]): Promise<void> {
  const client = new Redis(REDIS_URL);
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  }
  client.disconnect();
}

/** The three pairings of workload 11: Stem's mode against BullMQ's. */
const PAIRS = [
  { metric: 'on the event loop', stem: undefined, bullmq: 'inline' },
  { metric: 'in worker threads', stem: 'threads', bullmq: 'thread' },
  { metric: 'in child processes', stem: 'processes', bullmq: 'process' },
] as const;

/** The rows of workload 11, before measuring (for error rows). */
export function isolationRowShapes(options: { concurrency: number }): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  return PAIRS.map(({ metric }) => ({
    workload: `11 isolation: no-op tasks, concurrency ${options.concurrency} (redis)`,
    metric: `throughput ${metric}`,
    unit: 'tasks/s',
    better: 'higher' as const,
    peerName: 'bullmq (sandboxed processor where isolated)',
  }));
}

/** Measures workload 11: each pairing `runs` times (medians), in this process, on `redisUrl`. */
export async function isolationRows(options: {
  n: number;
  concurrency: number;
  runs: number;
  redisUrl: string;
  log: (line: string) => void;
}): Promise<ResultRow[]> {
  ({ n, concurrency } = options);
  REDIS_URL = options.redisUrl;
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const shapes = isolationRowShapes(options);
  const rows: ResultRow[] = [];
  for (const [index, pair] of PAIRS.entries()) {
    const stem: number[] = [];
    const peer: number[] = [];
    for (let run = 0; run < options.runs; run++) {
      stem.push(await stemDrain(pair.stem));
      peer.push(await bullmqDrain(pair.bullmq));
      options.log(
        `11 isolation ${pair.metric}, run ${run + 1}/${options.runs}: stem ${Math.round(stem.at(-1)!)}, bullmq ${Math.round(peer.at(-1)!)} tasks/s`,
      );
    }
    rows.push({ ...shapes[index]!, stem: median(stem), peer: median(peer), runs: options.runs });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  n = Number(process.argv[2] ?? 2000);
  concurrency = Number(process.argv[3] ?? 8);
  const rows: Array<[string, number]> = [
    ['Stem, on the event loop', await stemDrain(undefined)],
    ['Stem, isolation pool: threads', await stemDrain('threads')],
    ['Stem, isolation pool: processes', await stemDrain('processes')],
    ['BullMQ, inline processor', await bullmqDrain('inline')],
    ['BullMQ, sandboxed: worker threads', await bullmqDrain('thread')],
    ['BullMQ, sandboxed: child processes', await bullmqDrain('process')],
  ];
  console.log(`no-op tasks, ${n} drained with concurrency ${concurrency} (${concurrency} warm children), Redis ${REDIS_URL}`);
  console.log('| system | tasks/s | per task (µs, 1/rate × concurrency) |');
  console.log('|---|---:|---:|');
  for (const [name, rate] of rows) console.log(`| ${name} | ${Math.round(rate)} | ${Math.round((1e6 / rate) * concurrency)} |`);
  process.exit(0);
}
