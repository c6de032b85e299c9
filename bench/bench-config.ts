import { parseArgs } from 'node:util';

/** What one `npm run bench` runs, from flags and BENCH_* variables (flags win). */
export interface BenchConfig {
  /** Tasks per throughput run (workloads 1, 2, 3, 5, 7). */
  n: number;
  /** Measured runs per workload; the median is reported. */
  runs: number;
  /** Tasks of the warm-up run that precedes the measured ones (not counted). */
  warmupN: number;
  /** Batch size of bulk enqueue. */
  batch: number;
  /** Worker concurrency of the throughput workloads. */
  concurrency: number;
  /** Latency samples per run (workloads 4 and 5), after `latencyWarmup` uncounted ones. */
  latencySamples: number;
  latencyWarmup: number;
  /** Tasks processed before the worker's resident memory is read (workload 6). */
  memoryN: number;
  /** Waiting tasks whose Redis memory is measured (workload 6); reported per 100k. */
  redisMemoryN: number;
  /** Delayed tasks per run of workload 8, due over `delayedSpreadMs` after a lead of `delayedLeadMs`. */
  delayedN: number;
  delayedLeadMs: number;
  delayedSpreadMs: number;
  /** Single enqueues on Postgres (workload 5; it is the slowest workload per task). */
  pgSingleN: number;
  /** Workload numbers to run. */
  only: Set<number>;
  /** Parts of workload 5 to run (`a`–`d`; BENCH_PG_PARTS, all by default): for A/B runs of one part. */
  pgParts: Set<string>;
  /** Postgres peers of workload 5 (BENCH_PG_PEERS: `graphile-worker`, `pg-boss`, `postgres floor`, `postgres floor (Stem's tables)`; all by default). */
  pgPeers: Set<string>;
  redisUrl: string;
  postgresUrl: string;
  quick: boolean;
}

const USAGE = `npm run bench -- [--quick] [--n 20000] [--runs 3] [--only 1,2,3] [--concurrency 100]
  env: BENCH_N, BENCH_RUNS, BENCH_ONLY, BENCH_REDIS_URL (redis://127.0.0.1:6379/12), BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/test)
  workload 5 only: BENCH_PG_PARTS (a,b,c,d), BENCH_PG_PEERS (graphile-worker,pg-boss,postgres floor,postgres floor (Stem's tables))`;

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new Error(`${name} must be a whole number of 1 or more, got ${JSON.stringify(value)}\n${USAGE}`);
  return parsed;
}

/** A comma-separated choice among `allowed` (all of them when unset). */
function listOf(value: string | undefined, allowed: readonly string[], name: string): Set<string> {
  if (value === undefined || value.trim() === '') return new Set(allowed);
  const chosen = value.split(',').map((item) => item.trim());
  for (const item of chosen) {
    if (!allowed.includes(item)) throw new Error(`${name} takes ${allowed.join(', ')}, got ${JSON.stringify(item)}\n${USAGE}`);
  }
  return new Set(chosen);
}

/** Reads the flags and the environment. */
export function readBenchConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BenchConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      n: { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      concurrency: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true || env.BENCH_QUICK === '1';
  const n = positiveInt(values.n ?? env.BENCH_N, quick ? 2_000 : 20_000, 'BENCH_N / --n');
  const runs = positiveInt(values.runs ?? env.BENCH_RUNS, quick ? 1 : 3, 'BENCH_RUNS / --runs');
  const onlyText = values.only ?? env.BENCH_ONLY;
  const only = new Set(
    onlyText ? onlyText.split(',').map((item) => positiveInt(item.trim(), 0, '--only')) : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
  );
  return {
    n,
    runs,
    warmupN: Math.max(200, Math.round(n / 10)),
    batch: 1_000,
    concurrency: positiveInt(values.concurrency ?? env.BENCH_CONCURRENCY, 100, '--concurrency'),
    latencySamples: quick ? 100 : 500,
    latencyWarmup: quick ? 20 : 50,
    memoryN: quick ? 10_000 : 100_000,
    redisMemoryN: quick ? 10_000 : 100_000,
    pgSingleN: Math.min(n, quick ? 1_000 : 2_000),
    delayedN: 200,
    delayedLeadMs: 500,
    delayedSpreadMs: quick ? 1_500 : 2_500,
    only,
    pgParts: listOf(env.BENCH_PG_PARTS, ['a', 'b', 'c', 'd'], 'BENCH_PG_PARTS'),
    pgPeers: listOf(
      env.BENCH_PG_PEERS,
      ['graphile-worker', 'pg-boss', 'postgres floor', "postgres floor (Stem's tables)"],
      'BENCH_PG_PEERS',
    ),
    redisUrl: env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12',
    postgresUrl: env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    quick,
  };
}
