/**
 * `npm run bench`: Stem side by side with BullMQ (same Redis) and graphile-worker (same Postgres),
 * in one run of one process tree. This process only orchestrates: each producer and each worker
 * runs in a child process of its own (bench/child.ts), the same way for every system. See
 * docs/benchmarks.md for what each workload measures and the fairness rules.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { readBenchConfig, type BenchConfig } from './bench-config.js';
import { jsonLine, table, type ResultRow } from './bench-report.js';
import { BenchStorage } from './bench-storage.js';
import { cliStartupRowShapes, cliStartupRows } from './cli-startup.js';
import { sqliteRowShapes, sqliteRows } from './sqlite-workloads.js';
import { isolationRowShapes, isolationRows } from './isolation.js';
import { keyedRowShapes, keyedRows } from './keyed-claims.js';
import { clusterRowShapes, clusterRows } from './redis-cluster.js';
import { workflowRowShapes, workflowRows } from './workflows.js';
import { ChildLink } from './child-link.js';
import { median, percentile } from './stats.js';
import type { Servers, SystemId } from './systems/bench-system.js';

const config: BenchConfig = readBenchConfig(process.argv.slice(2), process.env);
const servers: Servers = { redisUrl: config.redisUrl, postgresUrl: config.postgresUrl };
const rows: ResultRow[] = [];
const children = new Map<string, ChildLink>();
const began = Date.now();

function log(message: string): void {
  const seconds = ((Date.now() - began) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

function rate(n: number, ms: number): number {
  return (n / ms) * 1_000;
}

/** The long-lived child for one role of one system (spawned on first use). */
async function child(role: 'producer' | 'worker', system: SystemId, tag = ''): Promise<ChildLink> {
  const key = `${role}:${system}${tag}`;
  let link = children.get(key);
  if (link === undefined) {
    link = await ChildLink.spawn(role, system, servers);
    children.set(key, link);
  }
  return link;
}

async function closeChildren(filter: (key: string) => boolean): Promise<void> {
  for (const [key, link] of [...children]) {
    if (!filter(key)) continue;
    children.delete(key);
    await link.close();
  }
}

/** A contender in an A/B measurement. */
interface Contender {
  label: string;
  system: SystemId;
}

/**
 * Runs a warm-up pass (not counted) and `config.runs` measured passes; each pass measures both
 * contenders, alternating who goes first. Returns each contender's measured values.
 */
async function abPasses<const C extends readonly Contender[]>(
  title: string,
  contenders: C,
  measure: (contender: Contender, n: number) => Promise<number>,
  options: { warmup?: boolean; n?: number; unit?: string } = {},
): Promise<{ [K in keyof C]: number[] }> {
  const values = contenders.map(() => [] as number[]);
  const n = options.n ?? config.n;
  const first = options.warmup === false ? 1 : 0;
  for (let pass = first; pass <= config.runs; pass++) {
    // Who goes first rotates from pass to pass (with two: A B, B A, A B, …).
    const order = contenders.map((_, k) => (k + pass) % contenders.length);
    for (const index of order) {
      const contender = contenders[index]!;
      const value = await measure(contender, pass === 0 ? Math.min(n, config.warmupN) : n);
      const what = pass === 0 ? 'warm-up' : `run ${pass}/${config.runs}`;
      log(`${title}, ${what}, ${contender.label}: ${Math.round(value).toLocaleString('en-US')} ${options.unit ?? 'tasks/s'}`);
      if (pass > 0) values[index]!.push(value);
    }
  }
  return values as { [K in keyof C]: number[] };
}

/** Pushes a row from the measured values (medians), or an error row when the workload failed. */
function pushRow(row: Omit<ResultRow, 'stem' | 'peer' | 'runs'>, stem: number[], peer: number[]): void {
  rows.push({ ...row, stem: median(stem), peer: median(peer), runs: Math.min(stem.length, peer.length) });
}

async function guarded(
  title: string,
  failedRows: Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>>,
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? String(error);
    log(`${title} FAILED: ${(error as Error).stack ?? message}`);
    for (const row of failedRows) rows.push({ ...row, stem: Number.NaN, peer: Number.NaN, runs: 0, error: message });
  }
}

// ---- Redis: Stem vs BullMQ ---------------------------------------------------------------------

const STEM: Contender = { label: 'stem', system: 'stem-redis' };
const BULLMQ: Contender = { label: 'bullmq', system: 'bullmq' };
/** The physical floor (#28): the same workload as a raw ioredis loop with no framework (bench/systems/floor-system.ts). */
const FLOOR: Contender = { label: 'redis floor', system: 'redis-floor' };

/** The row of `row`'s metric against the floor: the share of what the machine allows (target ≥ 0.7 where the issue sets one). */
function floorRow<R extends Omit<ResultRow, 'stem' | 'peer' | 'runs'>>(row: R, target = true): R {
  return { ...row, peerName: 'redis floor (raw ioredis)', target: target ? { op: '>=' as const, value: 0.7 } : undefined };
}

async function verifyRedisDrain(system: SystemId, n: number, storage: BenchStorage): Promise<void> {
  const stored =
    system === 'bullmq'
      ? await storage.bullmqCompleted()
      : system === 'redis-floor'
        ? await storage.floorSucceeded()
        : await storage.stemRedisSucceeded();
  if (stored < n) throw new Error(`${system}: ${n} tasks drained but only ${stored} results stored`);
}

/** Fills the queue with `n` tasks (bulk) and drains it with a worker; returns tasks/s. */
async function drainRate(system: SystemId, producerSystem: SystemId, n: number, storage: BenchStorage, workerTag = ''): Promise<number> {
  await storage.flushRedis();
  const producer = await child('producer', producerSystem);
  await producer.enqueueBulk(n, config.batch);
  const worker = await child('worker', system, workerTag);
  const report = await worker.drain(n, config.concurrency);
  await verifyRedisDrain(system, n, storage);
  return rate(n, report.elapsedMs);
}

async function redisWorkloads(storage: BenchStorage): Promise<void> {
  const peer = { peerName: 'bullmq' };
  if (config.only.has(1)) {
    const base = {
      workload: '1 enqueue one at a time (redis)',
      metric: 'throughput',
      unit: 'tasks/s',
      better: 'higher' as const,
      target: { op: '>=' as const, value: 1.2 },
      ...peer,
    };
    await guarded('workload 1', [base, floorRow(base)], async () => {
      const [stem, bull, floor] = await abPasses('1 single enqueue', [STEM, BULLMQ, FLOOR], async (contender, n) => {
        await storage.flushRedis();
        const ms = await (await child('producer', contender.system)).enqueueOne(n);
        return rate(n, ms);
      });
      pushRow(base, stem, bull);
      pushRow(floorRow(base), stem, floor);
    });
  }
  if (config.only.has(2)) {
    const base = {
      workload: '2 enqueue in bulk of 1,000 (redis)',
      metric: 'throughput',
      unit: 'tasks/s',
      better: 'higher' as const,
      target: { op: '>=' as const, value: 2 },
      ...peer,
    };
    await guarded('workload 2', [base, floorRow(base)], async () => {
      const [stem, bull, floor] = await abPasses('2 bulk enqueue', [STEM, BULLMQ, FLOOR], async (contender, n) => {
        await storage.flushRedis();
        const ms = await (await child('producer', contender.system)).enqueueBulk(n, config.batch);
        return rate(n, ms);
      });
      pushRow(base, stem, bull);
      pushRow(floorRow(base), stem, floor);
    });
  }
  if (config.only.has(3)) {
    const base = {
      workload: `3 process pre-filled queue, concurrency ${config.concurrency} (redis)`,
      metric: 'throughput',
      unit: 'tasks/s',
      better: 'higher' as const,
      target: { op: '>=' as const, value: 2 },
      ...peer,
    };
    await guarded('workload 3', [base, floorRow(base)], async () => {
      const [stem, bull, floor] = await abPasses('3 process', [STEM, BULLMQ, FLOOR], (contender, n) =>
        drainRate(contender.system, contender.system, n, storage),
      );
      pushRow(base, stem, bull);
      pushRow(floorRow(base), stem, floor);
    });
  }
  if (config.only.has(4)) {
    const workload = '4 latency, concurrency 1 (redis)';
    const lower = { unit: 'ms', better: 'lower' as const, ...peer };
    const resultRows = [
      { workload, metric: 'enqueue → result visible p50', target: { op: '<=' as const, value: 1 }, ...lower },
      { workload, metric: 'enqueue → result visible p99', target: { op: '<=' as const, value: 1 }, ...lower },
      { workload, metric: 'enqueue → handler start p50', ...lower },
      { workload, metric: 'enqueue → handler start p99', ...lower },
    ];
    const floorRows = resultRows.map((row) => floorRow(row, false));
    await guarded('workload 4', [...resultRows, ...floorRows], async () => {
      const perRun = await latencyRuns('4 latency', [STEM, BULLMQ, FLOOR], () => storage.flushRedis());
      for (let k = 0; k < resultRows.length; k++) {
        const stem = perRun[0].map((run) => run[k]!);
        pushRow(
          resultRows[k]!,
          stem,
          perRun[1].map((run) => run[k]!),
        );
        pushRow(
          floorRows[k]!,
          stem,
          perRun[2].map((run) => run[k]!),
        );
      }
    });
  }
  if (config.only.has(7)) {
    const base = {
      workload: `7 telemetry on (no SDK) vs off, workload 3 (redis)`,
      metric: 'throughput, on vs off',
      unit: 'tasks/s',
      better: 'higher' as const,
      target: { op: '>=' as const, value: 0.95 },
      peerName: 'stem, telemetry off',
    };
    await guarded('workload 7', [base], async () => {
      const on: Contender = { label: 'stem telemetry on', system: 'stem-redis-telemetry' };
      const off: Contender = { label: 'stem telemetry off', system: 'stem-redis' };
      const [withTelemetry, without] = await abPasses('7 telemetry', [on, off], (contender, n) =>
        // Both variants in worker processes of their own, started for this workload.
        drainRate(contender.system, 'stem-redis', n, storage, ':telemetry-workload'),
      );
      pushRow(base, withTelemetry, without);
    });
  }
  if (config.only.has(8)) {
    const workload = `8 delayed-task lateness, ${config.delayedN} due over ${(config.delayedSpreadMs / 1_000).toFixed(1)} s, idle worker (redis)`;
    const lower = { workload, unit: 'ms', better: 'lower' as const, ...peer };
    const latenessRows = [
      { metric: 'delayed-task lateness p50 (start − due)', ...lower },
      { metric: 'delayed-task lateness p99 (start − due)', ...lower },
    ];
    await guarded('workload 8', latenessRows, async () => {
      const perRun = await latenessRuns('8 delayed lateness', [STEM, BULLMQ], () => storage.flushRedis());
      for (let k = 0; k < latenessRows.length; k++)
        pushRow(
          latenessRows[k]!,
          perRun[0].map((run) => run[k]!),
          perRun[1].map((run) => run[k]!),
        );
    });
  }
  if (config.only.has(6)) {
    const n = config.memoryN;
    const per = 100_000;
    const rssRow = {
      workload: `6 memory`,
      metric: `worker RSS after ${n.toLocaleString('en-US')} tasks`,
      unit: 'MB',
      better: 'lower' as const,
      ...peer,
    };
    const redisRow = {
      workload: `6 memory`,
      metric: `Redis memory per 100k waiting tasks (measured at ${n.toLocaleString('en-US')})`,
      unit: 'MB',
      better: 'lower' as const,
      ...peer,
    };
    await guarded('workload 6', [rssRow, redisRow], async () => {
      const rss: [number[], number[]] = [[], []];
      const redisBytes: [number[], number[]] = [[], []];
      for (const [index, contender] of [STEM, BULLMQ].entries()) {
        await storage.flushRedis();
        await (await child('producer', contender.system)).enqueueBulk(n, config.batch);
        const memory = await storage.memoryOf(contender === STEM ? 'stem' : 'bullmq');
        redisBytes[index]!.push((memory.bytes / n) * per);
        // A fresh worker process, so its memory is that of one worker that processed n tasks.
        const worker = await ChildLink.spawn('worker', contender.system, servers);
        try {
          const report = await worker.drain(n, config.concurrency);
          rss[index]!.push(report.rssBytes);
          log(
            `6 memory, ${contender.label}: ${(memory.bytes / 2 ** 20).toFixed(1)} MB in ${memory.keys} keys for ${n} waiting tasks; worker RSS ${(report.rssBytes / 2 ** 20).toFixed(1)} MB after ${n} tasks (${Math.round(rate(n, report.elapsedMs))} tasks/s)`,
          );
        } finally {
          await worker.close();
        }
        await verifyRedisDrain(contender.system, n, storage);
      }
      const mb = (values: number[]): number[] => values.map((bytes) => bytes / 2 ** 20);
      pushRow(rssRow, mb(rss[0]), mb(rss[1]));
      pushRow(redisRow, mb(redisBytes[0]), mb(redisBytes[1]));
    });
  }
}

/**
 * Latency runs: a concurrency-1 worker serves while the producer does sequential round trips.
 * Returns per contender, per run: [result p50, result p99, start p50, start p99].
 */
async function latencyRuns<const C extends readonly Contender[]>(
  title: string,
  contenders: C,
  flush: () => Promise<void>,
): Promise<{ [K in keyof C]: number[][] }> {
  const out = contenders.map(() => [] as number[][]);
  for (let pass = 1; pass <= config.runs; pass++) {
    const order = contenders.map((_, k) => (k + pass - 1) % contenders.length);
    for (const index of order) {
      const contender = contenders[index]!;
      await flush();
      const worker = await child('worker', contender.system);
      const producer = await child('producer', contender.system);
      await worker.serve(1);
      let done: number[];
      let starts: number[];
      try {
        done = await producer.roundTrips(config.latencyWarmup, config.latencySamples);
      } finally {
        starts = await worker.stopServing();
      }
      const run = [percentile(done, 50), percentile(done, 99), percentile(starts, 50), percentile(starts, 99)];
      out[index]!.push(run);
      log(
        `${title}, run ${pass}/${config.runs}, ${contender.label}: result p50 ${run[0]!.toFixed(2)} ms, p99 ${run[1]!.toFixed(2)} ms; start p50 ${run[2]!.toFixed(2)} ms, p99 ${run[3]!.toFixed(2)} ms (${done.length} samples)`,
      );
    }
  }
  return out as { [K in keyof C]: number[][] };
}

/** The concurrency of the idle worker of workload 8: a few free slots, nothing else to do. */
const DELAYED_CONCURRENCY = 10;

/**
 * Delayed-task lateness runs: a worker serves and goes idle, the producer enqueues
 * `config.delayedN` tasks due at staggered times (one bulk call, in a scrambled order), and each
 * handler start is compared with its task's due time. A warm-up of 20 (not counted) goes first.
 * Returns per contender, per run: [p50, p99].
 */
async function latenessRuns(
  title: string,
  contenders: readonly [Contender, Contender],
  flush: () => Promise<void>,
): Promise<[number[][], number[][]]> {
  const out: [number[][], number[][]] = [[], []];
  for (let pass = 0; pass <= config.runs; pass++) {
    const order = pass % 2 === 1 ? [0, 1] : [1, 0];
    for (const index of order) {
      const contender = contenders[index]!;
      const measured = pass > 0;
      const n = measured ? config.delayedN : 20;
      await flush();
      const worker = await child('worker', contender.system);
      const producer = await child('producer', contender.system);
      await worker.serve(DELAYED_CONCURRENCY);
      let lateness: number[];
      try {
        // idle first: the worker has found nothing and waits, as a worker between bursts does
        await new Promise((resolve) => setTimeout(resolve, 300));
        const lastDue = await producer.enqueueDelayed(n, config.delayedLeadMs, measured ? config.delayedSpreadMs : 300, measured);
        const deadline = lastDue + 30_000;
        // warm-up tasks are not counted by the recorder: wait for their time instead
        if (!measured) await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastDue - Date.now()) + 200));
        while (measured && (await worker.startedCount()) < n) {
          if (Date.now() > deadline) throw new Error(`${contender.label}: delayed tasks still not started 30 s after the last was due`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        lateness = await worker.stopServing();
      }
      if (!measured) continue;
      const run = [percentile(lateness, 50), percentile(lateness, 99)];
      out[index]!.push(run);
      log(
        `${title}, run ${pass}/${config.runs}, ${contender.label}: lateness p50 ${run[0]!.toFixed(2)} ms, p99 ${run[1]!.toFixed(2)} ms, max ${Math.max(...lateness).toFixed(2)} ms (${lateness.length} tasks)`,
      );
    }
  }
  return out;
}

// ---- Postgres: Stem vs graphile-worker and pg-boss ----------------------------------------------

const STEM_PG: Contender = { label: 'stem', system: 'stem-postgres' };
const STEM_PG_IGNORE: Contender = { label: 'stem ignoreResult', system: 'stem-postgres-ignore' };
const GRAPHILE: Contender = { label: 'graphile-worker', system: 'graphile-worker' };
const PGBOSS: Contender = { label: 'pg-boss', system: 'pg-boss' };
/** Bare SQL with no framework (bench/systems/pg-floor-system.ts): what this machine's Postgres allows. */
const PG_FLOOR: Contender = { label: 'postgres floor', system: 'postgres-floor' };
/**
 * The same bare SQL on Stem's own tables, with rows of Stem's size and shape: between it and the
 * floor is what Stem's data model costs Postgres, between Stem and it what Stem's code costs.
 */
const PG_FLOOR_MODEL: Contender = { label: "postgres floor (Stem's tables)", system: 'postgres-floor-model' };
/** The floors: peers without targets that sit out 5d. */
const PG_FLOORS: readonly Contender[] = [PG_FLOOR, PG_FLOOR_MODEL];

/**
 * The Postgres peers measured in the same passes as Stem (BENCH_PG_PEERS): each row is Stem
 * against one of them. The floors' rows carry no target (they say how close Stem is to the
 * machine and to its own tables), and they sit out 5d: their workers poll, with no wake-up to measure.
 */
const PG_PEERS = [GRAPHILE, PGBOSS, ...PG_FLOORS].filter((peer) => config.pgPeers.has(peer.label));
const PG_LATENCY_PEERS = PG_PEERS.filter((peer) => !PG_FLOORS.includes(peer));

type RowShape = Omit<ResultRow, 'stem' | 'peer' | 'runs'>;

/** One row per peer measured: the shape given, with the peer's name. */
function peerRows(shape: Omit<RowShape, 'peerName'>, peers: readonly Contender[] = PG_PEERS): RowShape[] {
  return peers.map((peer) => {
    if (!PG_FLOORS.includes(peer)) return { ...shape, peerName: peer.label };
    const { target: _target, ...untargeted } = shape;
    return { ...untargeted, peerName: peer.label };
  });
}

/** Rows of Stem's values against each peer's (`peers[k]` goes with `rows[k]`). */
function pushPeerRows(rows: readonly RowShape[], stem: number[], peers: readonly number[][]): void {
  for (let k = 0; k < rows.length; k++) pushRow(rows[k]!, stem, peers[k]!);
}

async function postgresWorkloads(storage: BenchStorage): Promise<void> {
  const higher = { unit: 'tasks/s', better: 'higher' as const, metric: 'throughput' };
  const parts = config.pgParts;
  const singleRows = peerRows({
    workload: `5a enqueue one at a time (postgres, n=${config.pgSingleN.toLocaleString('en-US')})`,
    ...higher,
    target: { op: '>=', value: 1.5 },
  });
  if (parts.has('a'))
    await guarded('workload 5a', singleRows, async () => {
      const [stem, ...peers] = await abPasses(
        '5a single enqueue (postgres)',
        [STEM_PG, ...PG_PEERS],
        async (contender, n) => {
          await storage.flushPostgres();
          return rate(n, await (await child('producer', contender.system)).enqueueOne(n));
        },
        { n: config.pgSingleN },
      );
      pushPeerRows(singleRows, stem!, peers);
    });
  const bulkRows = peerRows({ workload: '5b enqueue in bulk of 1,000 (postgres)', ...higher, target: { op: '>=', value: 1.2 } });
  if (parts.has('b'))
    await guarded('workload 5b', bulkRows, async () => {
      const [stem, ...peers] = await abPasses('5b bulk enqueue (postgres)', [STEM_PG, ...PG_PEERS], async (contender, n) => {
        await storage.flushPostgres();
        return rate(n, await (await child('producer', contender.system)).enqueueBulk(n, config.batch));
      });
      pushPeerRows(bulkRows, stem!, peers);
    });
  const processing = `5c process pre-filled queue, concurrency ${config.concurrency} (postgres)`;
  const processRows = peerRows({ workload: processing, ...higher, metric: 'throughput, results stored', target: { op: '>=', value: 1.5 } });
  const ignoreRows = peerRows({ workload: processing, ...higher, metric: 'throughput, ignoreResult', target: { op: '>=', value: 2 } });
  if (parts.has('c'))
    await guarded('workload 5c', [...processRows, ...ignoreRows], async () => {
      const [stem, ignoring, ...peers] = await abPasses(
        '5c process (postgres)',
        [STEM_PG, STEM_PG_IGNORE, ...PG_PEERS],
        async (contender, n) => {
          await storage.flushPostgres();
          await (await child('producer', contender.system)).enqueueBulk(n, config.batch);
          const report = await (await child('worker', contender.system)).drain(n, config.concurrency);
          if (contender === STEM_PG) {
            const stored = await storage.stemPostgresSucceeded();
            if (stored < n) throw new Error(`stem-postgres: ${n} tasks drained but only ${stored} results stored`);
          }
          return rate(n, report.elapsedMs);
        },
      );
      pushPeerRows(processRows, stem!, peers);
      pushPeerRows(ignoreRows, ignoring!, peers);
    });
  const workload = '5d latency, concurrency 1 (postgres)';
  const lower = { workload, unit: 'ms', better: 'lower' as const };
  const metrics = [
    'enqueue → outcome visible p50',
    'enqueue → outcome visible p99',
    'enqueue → handler start p50',
    'enqueue → handler start p99',
  ];
  const latencyRows = metrics.map((metric) =>
    peerRows({ metric, ...lower, ...(metric.endsWith('p50') ? { target: { op: '<=', value: 1 } } : {}) }, PG_LATENCY_PEERS),
  );
  if (parts.has('d'))
    await guarded('workload 5d', latencyRows.flat(), async () => {
      const [stem, ...peers] = await latencyRuns('5d latency (postgres)', [STEM_PG, ...PG_LATENCY_PEERS], () => storage.flushPostgres());
      for (let k = 0; k < latencyRows.length; k++) {
        pushPeerRows(
          latencyRows[k]!,
          stem!.map((run) => run[k]!),
          peers.map((runs) => runs.map((run) => run[k]!)),
        );
      }
    });
  const dead = await storage.deadTuples().catch(() => []);
  if (dead.length > 0)
    log(
      `dead tuples after the Postgres workloads: ${dead.map((row) => `${row.table} ${row.dead} dead / ${row.live} live (autovacuum ${row.autovacuums}×)`).join('; ')}`,
    );
}

let loadAtStart = '';

/** The 1, 5 and 15 minute load averages (other work on the machine shows here). */
function loadNow(): string {
  return loadavg()
    .map((value) => value.toFixed(1))
    .join(' / ');
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const storage = await BenchStorage.open(config.redisUrl, config.postgresUrl);
  const versions = await storage.versions();
  const cpu = cpus();
  const machine = `${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}, Redis ${versions.redis}, Postgres ${versions.postgres}`;
  log(
    `stem bench: n=${config.n}, runs=${config.runs} (+1 warm-up of ${config.warmupN}), concurrency=${config.concurrency}${config.quick ? ', --quick' : ''}`,
  );
  loadAtStart = loadNow();
  log(`machine: ${machine}; load average ${loadAtStart}`);
  try {
    await storage.flushRedis();
    if ([1, 2, 3, 4, 6, 7, 8].some((w) => config.only.has(w))) {
      await redisWorkloads(storage);
      await closeChildren(() => true);
      await storage.flushRedis();
    }
    if (config.only.has(9)) {
      await guarded('workload 9', cliStartupRowShapes(), async () => {
        rows.push(...(await cliStartupRows({ runs: config.runs, redisUrl: config.redisUrl, log })));
      });
    }
    if (config.only.has(10)) {
      const sqlite = { runs: config.runs, n: config.n, singleN: config.pgSingleN, latencySamples: config.latencySamples, log };
      await guarded('workload 10', sqliteRowShapes(sqlite), async () => {
        rows.push(...(await sqliteRows(sqlite)));
      });
    }
    if (config.only.has(11)) {
      const isolation = { n: Math.min(config.n, 5_000), concurrency: 8, runs: config.runs, redisUrl: config.redisUrl, log };
      await guarded('workload 11', isolationRowShapes(isolation), async () => {
        rows.push(...(await isolationRows(isolation)));
      });
      await storage.flushRedis();
    }
    if (config.only.has(12)) {
      const keyed = {
        n: Math.min(config.n, 10_000),
        pgN: Math.min(config.n, 2_000),
        runs: config.runs,
        redisUrl: config.redisUrl,
        postgresUrl: config.postgresUrl,
        pgPollMs: 1_000,
        log,
      };
      await guarded('workload 12', keyedRowShapes(), async () => {
        rows.push(...(await keyedRows(keyed)));
      });
      await storage.flushRedis();
    }
    if (config.only.has(13)) {
      await guarded('workload 13', clusterRowShapes(), async () => {
        rows.push(...(await clusterRows()));
      });
    }
    if (config.only.has(14)) {
      const workflowBench = {
        n: Math.min(config.n, 2_000),
        pgN: Math.min(config.n, 1_000),
        samples: Math.min(config.latencySamples, 100),
        runs: config.runs,
        redisUrl: config.redisUrl,
        postgresUrl: config.postgresUrl,
        log,
      };
      await guarded('workload 14', workflowRowShapes(), async () => {
        rows.push(...(await workflowRows(workflowBench)));
      });
      await storage.flushRedis();
    }
    if (config.only.has(5)) {
      await storage.dropSchemas();
      // Producers first: they run the migrations of both systems before anything else touches the schemas.
      await child('producer', 'stem-postgres');
      await child('producer', 'graphile-worker');
      await child('producer', 'pg-boss');
      await postgresWorkloads(storage);
    }
  } finally {
    await closeChildren(() => true);
    // Only what this run used: a run of workload 5 leaves a concurrent Redis-only run's keys alone, and the other way round.
    if (storage.usedRedis) await storage.flushRedis().catch(() => undefined);
    if (storage.usedPostgres) await storage.dropSchemas().catch(() => undefined);
    await storage.close();
  }
  const elapsed = Math.round((Date.now() - began) / 1000);
  const load = `load average at start ${loadAtStart}, at end ${loadNow()}`;
  console.log(`\nStem vs peers — ${machine}`);
  console.log(
    `n=${config.n} tasks per throughput run, median of ${config.runs} run(s) after a warm-up, concurrency ${config.concurrency}; took ${elapsed}s; ${load}\n`,
  );
  console.log(table(rows));
  console.log('');
  for (const row of rows) console.log(jsonLine(row));
  if (rows.some((row) => row.error !== undefined)) process.exitCode = 1;
}

await main();
