/**
 * Workload 14 of `npm run bench` (and on its own: `npx tsx bench/workflows.ts [n]`): what a durable
 * workflow costs over plain tasks, on Redis and on Postgres. One process, one worker (concurrency
 * 32): n runs of a 3-step workflow (three no-op steps, each checkpointed) started at once, steps/s
 * from the first start to the last result, beside 3n no-op tasks enqueued at once (tasks/s); and
 * the end-to-end latency of one 3-step run at a time (start → result, median of the samples)
 * beside three no-op tasks enqueued one after another, each awaited. Median of the runs after a
 * warm-up. docs/workflows.md.
 */
import { pathToFileURL } from 'node:url';
import { postgres, runMigrations } from '../plugins/postgres/index.js';
import { redis } from '../plugins/redis/index.js';
import { defineWorkflow, workflows, workflowsOf } from '../plugins/workflows/index.js';
import { defineTask, Stem, type StemPlugin } from '../sdk/index.js';
import type { ResultRow } from './bench-report.js';
import { deleteKeys, dropPostgresSchema } from './bench-storage.js';

const CONCURRENCY = 32;
const SCHEMA = 'bench_workflows';
const NAMESPACE = 'benchwf';

/** Options of workload 14. */
export interface WorkflowBenchOptions {
  /** Runs per throughput pass (3n steps). */
  n: number;
  /** Runs per throughput pass on Postgres. */
  pgN: number;
  /** Latency samples per run. */
  samples: number;
  runs: number;
  redisUrl: string;
  postgresUrl: string;
  log: (line: string) => void;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const threeSteps = defineWorkflow({
  name: 'bench.three-steps',
  run: async (input: { n: number }, wf) => {
    const a = await wf.step('one', () => input.n);
    const b = await wf.step('two', () => a + 1);
    return wf.step('three', () => b + 1);
  },
});

const noop = defineTask({ name: 'bench.wf-noop', handler: async (args: { n: number }) => args.n });

/** A Stem on `plugin` with the workflow, the no-op task and a started worker, on a queue of its own. */
async function open(plugin: () => StemPlugin, queue: string): Promise<Stem> {
  const stem = await Stem.create({
    plugins: [plugin(), workflows({ definitions: [threeSteps], advanceOptions: { queue } })],
    tasks: [noop],
    defaultQueue: queue,
  });
  await stem.worker({ concurrency: CONCURRENCY, queues: [queue] }).start();
  return stem;
}

/** Steps per second of `count` concurrent 3-step runs. */
async function workflowThroughput(stem: Stem, count: number): Promise<number> {
  const ops = workflowsOf(stem);
  const began = performance.now();
  const handles = await Promise.all(Array.from({ length: count }, (_, n) => ops.start(threeSteps, { n })));
  // One listing every 20 ms rather than a wait per run: n runs polling the store would be the bench.
  const ids = new Set(handles.map((handle) => handle.id));
  for (;;) {
    const recent = await ops.list({ workflow: threeSteps.name, limit: count });
    if (recent.filter((run) => ids.has(run.id) && run.status === 'succeeded').length === count) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return (3 * count * 1_000) / (performance.now() - began);
}

/** Tasks per second of `count` no-op tasks enqueued at once. */
async function taskThroughput(stem: Stem, count: number): Promise<number> {
  const began = performance.now();
  const handles = await stem.enqueueMany(Array.from({ length: count }, (_, n) => ({ task: noop, args: { n } })));
  await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 600_000 })));
  return (count * 1_000) / (performance.now() - began);
}

/** Median ms from start to result of one 3-step run at a time. */
async function workflowLatency(stem: Stem, samples: number): Promise<number> {
  const ops = workflowsOf(stem);
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    const handle = await ops.start(threeSteps, { n: i });
    await ops.wait(handle.id, { pollMs: 2 });
    values.push(performance.now() - began);
  }
  return median(values);
}

/** Median ms of three no-op tasks run one after another, each awaited. */
async function taskLatency(stem: Stem, samples: number): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    for (let step = 0; step < 3; step++) await (await stem.enqueue(noop, { n: step })).result({ timeoutMs: 60_000 });
    values.push(performance.now() - began);
  }
  return median(values);
}

/** The rows of workload 14, without values (for a failed measurement). */
export function workflowRowShapes(): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  const rows: Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> = [];
  for (const store of ['redis', 'postgres']) {
    rows.push({
      workload: '14 workflows',
      metric: `3-step runs, steps/s (${store})`,
      unit: 'steps/s',
      peerName: `plain no-op tasks/s (${store})`,
      better: 'higher',
    });
    rows.push({
      workload: '14 workflows',
      metric: `3-step run end to end, median (${store})`,
      unit: 'ms',
      peerName: `3 tasks one after another (${store})`,
      better: 'lower',
    });
  }
  return rows;
}

/** Measures workload 14: each contender `runs` times after a warm-up, in this process. */
export async function workflowRows(options: WorkflowBenchOptions): Promise<ResultRow[]> {
  const { runs } = options;
  const measure = async (label: string, unit: string, pass: (warmup: boolean) => Promise<number>): Promise<number> => {
    await pass(true);
    const values: number[] = [];
    for (let i = 1; i <= runs; i++) values.push(await pass(false));
    options.log(`14 ${label}: ${values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ')} ${unit}`);
    return median(values);
  };
  await runMigrations(options.postgresUrl, SCHEMA);
  const stores: Array<[string, () => StemPlugin, number]> = [
    ['redis', () => redis({ url: options.redisUrl, namespace: NAMESPACE }), options.n],
    ['postgres', () => postgres({ url: options.postgresUrl, schema: SCHEMA, namespace: 'bench', migrate: false }), options.pgN],
  ];
  const values: number[][] = [];
  try {
    for (const [store, plugin, n] of stores) {
      const stem = await open(plugin, `wf-bench-${store}-${process.pid}`);
      try {
        const small = Math.min(n, 200);
        values.push([
          await measure(`${store} workflow steps/s`, 'steps/s', (warmup) => workflowThroughput(stem, warmup ? small : n)),
          await measure(`${store} plain tasks/s`, 'tasks/s', (warmup) => taskThroughput(stem, warmup ? small : 3 * n)),
        ]);
        values.push([
          await measure(`${store} 3-step run latency`, 'ms', (warmup) => workflowLatency(stem, warmup ? 5 : options.samples)),
          await measure(`${store} 3 sequential tasks latency`, 'ms', (warmup) => taskLatency(stem, warmup ? 5 : options.samples)),
        ]);
      } finally {
        await stem.close();
      }
    }
    return workflowRowShapes().map((shape, i) => ({ ...shape, stem: values[i]![0]!, peer: values[i]![1]!, runs }));
  } finally {
    await deleteKeys(options.redisUrl, [`${NAMESPACE}:*`, `{${NAMESPACE}:*`]);
    await dropPostgresSchema(options.postgresUrl, SCHEMA);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? process.env.BENCH_N ?? 1_000);
  const rows = await workflowRows({
    n,
    pgN: n,
    samples: Number(process.env.BENCH_SAMPLES ?? 50),
    runs: Number(process.env.BENCH_RUNS ?? 3),
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12',
    postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\nn = ${n} runs of 3 no-op steps, one worker, concurrency ${CONCURRENCY}\n`);
  for (const row of rows) {
    process.stdout.write(
      `${row.metric.padEnd(44)} ${Math.round(row.stem).toLocaleString('en-US').padStart(8)} ${row.unit}  vs ${row.peerName}: ` +
        `${Math.round(row.peer).toLocaleString('en-US')} ${row.unit}\n`,
    );
  }
  process.exit(0);
}
