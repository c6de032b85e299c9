/**
 * `npx tsx bench/keyed-claims.ts [n]`: what per-key concurrency costs. One worker (concurrency 20)
 * processes n no-op tasks that were enqueued up front, on Redis and on Postgres, three ways in
 * the same run: unkeyed; with 10 concurrency keys of limit 2 (20 slots, as many as the worker
 * has); and, for reference, BullMQ 5 on the same Redis processing unkeyed jobs (BullMQ's open-source
 * edition has no per-key concurrency: groups are in its paid Pro edition). In-process (producer and
 * worker share one process), median of 3 passes after a warm-up; tasks/s from the first delivery
 * to the last completion. docs/flow-control.md#cost shows a run.
 */
import { Queue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { postgres, runMigrations } from '../plugins/postgres/index.js';
import { redis } from '../plugins/redis/index.js';
import { defineTask, Stem, type StemPlugin } from '../sdk/index.js';

const n = Number(process.argv[2] ?? process.env.BENCH_N ?? 5_000);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12';
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = 'bench_keyed';
const CONCURRENCY = 20;
const KEYS = 10;
const LIMIT = 2;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function deleteKeys(url: string, patterns: string[]): Promise<void> {
  const client = new Redis(url);
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  }
  client.disconnect();
}

/** One pass of Stem: enqueue n tasks (keyed or not), then time one worker draining them. */
async function stemPass(plugin: () => StemPlugin, keyed: boolean, count: number, pass: number): Promise<number> {
  const queue = `keyed-bench-${keyed ? 'k' : 'u'}-${pass}-${process.pid}`;
  let done = 0;
  let first = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const noop = defineTask({
    name: 'bench.noop',
    options: { queue, ...(keyed ? { concurrencyKey: (args: { k: number }) => `k${args.k}`, concurrencyLimit: LIMIT } : {}) },
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

async function bullPass(count: number, pass: number): Promise<number> {
  const name = `keyedbench${pass}${process.pid}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix: 'benchbull' });
  for (let i = 0; i < count; i += 1_000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1_000, count - i) }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } })),
    );
  }
  let done = 0;
  let first = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const worker = new BullWorker(
    name,
    async () => {
      if (first === 0) first = performance.now();
      if (++done === count) finish();
    },
    { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix: 'benchbull', concurrency: CONCURRENCY },
  );
  await finished;
  const elapsed = performance.now() - first;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return (count / elapsed) * 1_000;
}

async function measure(label: string, pass: (count: number, pass: number) => Promise<number>): Promise<number> {
  await pass(Math.min(n, 1_000), 0);
  const values: number[] = [];
  for (let i = 1; i <= 3; i++) values.push(await pass(n, i));
  const value = median(values);
  process.stderr.write(`${label}: ${values.map((v) => Math.round(v)).join(', ')} -> median ${Math.round(value)} tasks/s\n`);
  return value;
}

await runMigrations(postgresUrl, schema);
const redisPlugin = () => redis({ url: redisUrl, namespace: 'benchstem' });
const pgPlugin = () =>
  postgres({ url: postgresUrl, schema, namespace: 'bench', migrate: false, pollIntervalMs: Number(process.env.BENCH_PG_POLL_MS ?? 1000) });
const rows: Array<[string, number]> = [];
try {
  rows.push(['redis, unkeyed', await measure('redis, unkeyed', (c, p) => stemPass(redisPlugin, false, c, p))]);
  rows.push([`redis, ${KEYS} keys × limit ${LIMIT}`, await measure('redis, keyed', (c, p) => stemPass(redisPlugin, true, c, p))]);
  rows.push(['BullMQ, unkeyed (no OSS per-key limit)', await measure('bullmq', bullPass)]);
  rows.push(['postgres, unkeyed', await measure('postgres, unkeyed', (c, p) => stemPass(pgPlugin, false, c, p))]);
  rows.push([`postgres, ${KEYS} keys × limit ${LIMIT}`, await measure('postgres, keyed', (c, p) => stemPass(pgPlugin, true, c, p))]);
} finally {
  await deleteKeys(redisUrl, ['benchstem:*', '{benchstem:*', 'benchbull:*']);
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  await client.query(`drop schema if exists ${schema} cascade`);
  await client.end();
}
process.stdout.write(`\nn = ${n}, one worker, concurrency ${CONCURRENCY}, no-op tasks\n`);
for (const [label, value] of rows)
  process.stdout.write(`${label.padEnd(42)} ${Math.round(value).toLocaleString('en-US').padStart(8)} tasks/s\n`);
