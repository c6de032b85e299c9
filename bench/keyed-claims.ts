/**
 * Workload 12 of `npm run bench` (and on its own: `npx tsx bench/keyed-claims.ts [n]`): what
 * per-key concurrency costs. One worker (concurrency 20) processes n no-op tasks that were
 * enqueued up front, in the same run: unkeyed; with 10 concurrency keys of limit 2 (20 slots, as
 * many as the worker has); and with one task-wide limit of 20. BullMQ on the same Redis does the
 * closest its open-source edition offers (per-key limits, "groups", are in its paid Pro edition):
 * unkeyed jobs; one queue per key, each with a global concurrency of 2 (`setGlobalConcurrency`)
 * and a worker of concurrency 2; and one queue with a global concurrency of 20. Postgres runs
 * unkeyed and keyed too. In-process (producer and worker share one process), median of the runs
 * after a warm-up; tasks/s from the first delivery to the last completion. docs/flow-control.md#cost.
 */
import { pathToFileURL } from 'node:url';
import { Queue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { postgres, runMigrations } from '../plugins/postgres/index.js';
import { redis } from '../plugins/redis/index.js';
import { defineTask, Stem, type StemPlugin } from '../sdk/index.js';
import type { ResultRow } from './bench-report.js';
import { deleteKeys, dropPostgresSchema } from './bench-storage.js';

const CONCURRENCY = 20;
const KEYS = 10;
const LIMIT = 2;
const SCHEMA = 'bench_keyed';

/** How the tasks of a pass are limited. */
type Limiting = 'unkeyed' | 'keyed' | 'task-wide';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function limitingOptions(limiting: Limiting): Record<string, unknown> {
  if (limiting === 'keyed') return { concurrencyKey: (args: { k: number }) => `k${args.k}`, concurrencyLimit: LIMIT };
  if (limiting === 'task-wide') return { concurrencyLimit: CONCURRENCY };
  return {};
}

/** One pass of Stem: enqueue `count` tasks, then time one worker draining them. */
async function stemPass(plugin: () => StemPlugin, limiting: Limiting, count: number, pass: number): Promise<number> {
  const queue = `keyed-bench-${limiting}-${pass}-${process.pid}`;
  let done = 0;
  let first = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const noop = defineTask({
    name: 'bench.noop',
    options: { queue, ...limitingOptions(limiting) },
    handler: async () => {
      if (first === 0) first = performance.now();
      if (++done === count) finish();
    },
  });
  const stem = await Stem.create({ plugins: [plugin()], tasks: [noop], trackQueued: false });
  for (let i = 0; i < count; i += 1_000) {
    await stem.enqueueMany(Array.from({ length: Math.min(1_000, count - i) }, (_, j) => ({ task: noop, args: { k: (i + j) % KEYS } })));
  }
  await stem.worker({ queues: [queue], concurrency: CONCURRENCY }).start();
  await finished;
  const elapsed = performance.now() - first;
  await stem.close();
  return (count / elapsed) * 1_000;
}

/**
 * One pass of BullMQ: `queues` queues (jobs spread round robin), each with a worker of concurrency
 * CONCURRENCY / queues and, when `globalConcurrency` is given, that global concurrency per queue.
 */
async function bullPass(
  redisUrl: string,
  queues: number,
  globalConcurrency: number | undefined,
  count: number,
  pass: number,
): Promise<number> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const names = Array.from({ length: queues }, (_, q) => `keyedbench${pass}q${q}p${process.pid}`);
  const handles = names.map((name) => new Queue(name, { connection, prefix: 'benchbull' }));
  if (globalConcurrency !== undefined) for (const queue of handles) await queue.setGlobalConcurrency(globalConcurrency);
  for (let i = 0; i < count; i += 1_000) {
    const chunk = Math.min(1_000, count - i);
    for (let q = 0; q < queues; q++) {
      const jobs = Array.from({ length: chunk }, (_, j) => i + j)
        .filter((index) => index % queues === q)
        .map(() => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } }));
      if (jobs.length > 0) await handles[q]!.addBulk(jobs);
    }
  }
  let done = 0;
  let first = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const workers = names.map(
    (name) =>
      new BullWorker(
        name,
        async () => {
          if (first === 0) first = performance.now();
          if (++done === count) finish();
        },
        { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix: 'benchbull', concurrency: CONCURRENCY / queues },
      ),
  );
  await finished;
  const elapsed = performance.now() - first;
  await Promise.all(workers.map((worker) => worker.close()));
  for (const queue of handles) {
    await queue.obliterate({ force: true });
    await queue.close();
  }
  connection.disconnect();
  return (count / elapsed) * 1_000;
}

/** What workload 12 needs. */
export interface KeyedOptions {
  /** Tasks per Redis pass. */
  n: number;
  /** Tasks per Postgres pass (keyed claims there wait on acks: fewer). */
  pgN: number;
  /** Measured passes per contender (median reported), after one warm-up pass. */
  runs: number;
  redisUrl: string;
  postgresUrl: string;
  /** Poll interval of the Postgres worker, ms. */
  pgPollMs: number;
  log: (line: string) => void;
}

const WORKLOAD = `12 per-key concurrency: ${KEYS} keys × limit ${LIMIT}, one worker of concurrency ${CONCURRENCY}`;

/** The rows of workload 12, before measuring (for error rows). */
export function keyedRowShapes(): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  const row = (metric: string, peerName: string) => ({ workload: WORKLOAD, metric, unit: 'tasks/s', better: 'higher' as const, peerName });
  return [
    row('unkeyed (redis)', 'bullmq, one queue, concurrency 20'),
    row(`${KEYS} keys × limit ${LIMIT} (redis)`, `bullmq, ${KEYS} queues × global concurrency ${LIMIT} (OSS has no per-key limit)`),
    row(`task-wide limit ${CONCURRENCY} (redis)`, `bullmq, one queue, global concurrency ${CONCURRENCY}`),
    row(`${KEYS} keys × limit ${LIMIT} vs unkeyed, same run (redis)`, 'stem unkeyed (redis)'),
    row(`${KEYS} keys × limit ${LIMIT} vs unkeyed, same run (postgres)`, 'stem unkeyed (postgres)'),
  ];
}

/** Measures workload 12: every contender `runs` times after a warm-up, in this process. */
export async function keyedRows(options: KeyedOptions): Promise<ResultRow[]> {
  const { n, pgN, runs, redisUrl, postgresUrl } = options;
  const measure = async (label: string, count: number, pass: (count: number, pass: number) => Promise<number>): Promise<number> => {
    await pass(Math.min(count, 1_000), 0);
    const values: number[] = [];
    for (let i = 1; i <= runs; i++) values.push(await pass(count, i));
    options.log(`12 ${label}: ${values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ')} tasks/s`);
    return median(values);
  };
  await runMigrations(postgresUrl, SCHEMA);
  const redisPlugin = () => redis({ url: redisUrl, namespace: 'benchstem' });
  const pgPlugin = () =>
    postgres({ url: postgresUrl, schema: SCHEMA, namespace: 'bench', migrate: false, pollIntervalMs: options.pgPollMs });
  try {
    const redisUnkeyed = await measure('stem redis, unkeyed', n, (c, p) => stemPass(redisPlugin, 'unkeyed', c, p));
    const redisKeyed = await measure('stem redis, keyed', n, (c, p) => stemPass(redisPlugin, 'keyed', c, p));
    const redisTaskWide = await measure('stem redis, task-wide limit', n, (c, p) => stemPass(redisPlugin, 'task-wide', c, p));
    const bullUnkeyed = await measure('bullmq, one queue', n, (c, p) => bullPass(redisUrl, 1, undefined, c, p));
    const bullKeyed = await measure(`bullmq, ${KEYS} queues × global ${LIMIT}`, n, (c, p) => bullPass(redisUrl, KEYS, LIMIT, c, p));
    const bullGlobal = await measure(`bullmq, global ${CONCURRENCY}`, n, (c, p) => bullPass(redisUrl, 1, CONCURRENCY, c, p));
    const pgUnkeyed = await measure('stem postgres, unkeyed', pgN, (c, p) => stemPass(pgPlugin, 'unkeyed', c, p));
    const pgKeyed = await measure('stem postgres, keyed', pgN, (c, p) => stemPass(pgPlugin, 'keyed', c, p));
    const values: Array<[number, number]> = [
      [redisUnkeyed, bullUnkeyed],
      [redisKeyed, bullKeyed],
      [redisTaskWide, bullGlobal],
      [redisKeyed, redisUnkeyed],
      [pgKeyed, pgUnkeyed],
    ];
    return keyedRowShapes().map((shape, i) => ({ ...shape, stem: values[i]![0], peer: values[i]![1], runs }));
  } finally {
    await deleteKeys(redisUrl, ['benchstem:*', '{benchstem:*', 'benchbull:*']);
    await dropPostgresSchema(postgresUrl, SCHEMA);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? process.env.BENCH_N ?? 5_000);
  const rows = await keyedRows({
    n,
    pgN: n,
    runs: 3,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12',
    postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    pgPollMs: Number(process.env.BENCH_PG_POLL_MS ?? 1000),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\nn = ${n}, one worker, concurrency ${CONCURRENCY}, no-op tasks\n`);
  for (const row of rows) {
    process.stdout.write(
      `${row.metric.padEnd(48)} stem ${Math.round(row.stem).toLocaleString('en-US').padStart(8)}  vs ${row.peerName}: ${Math.round(row.peer).toLocaleString('en-US')} tasks/s\n`,
    );
  }
  process.exit(0);
}
