/**
 * Workload 10, SQLite queues on one machine: Stem's SQLite plugin against plainjob and liteque,
 * each through its own API with the same no-op task, each run on a fresh database file, every
 * producer and worker a process of its own (bench/sqlite-child.ts). Rows: single enqueue, bulk
 * enqueue (batches of 1,000; liteque has no bulk call, so one enqueue per job), processing a
 * pre-filled queue with one and with two worker processes, and enqueue → result visible p50/p99
 * with one worker of concurrency 1. The peers poll every 10 ms (their default is 1 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ResultRow } from './bench-report.js';
import type { SqliteSystem } from './sqlite-child.js';
import { median, percentile } from './stats.js';

const childScript = fileURLToPath(new URL('./sqlite-child.ts', import.meta.url));
const PEERS = ['plainjob', 'liteque'] as const;
const SYSTEMS: readonly SqliteSystem[] = ['stem', ...PEERS];
/** Worker concurrency of Stem and liteque (plainjob runs one job at a time per worker). */
const CONCURRENCY = 16;

/** What workload 10 needs from the bench's configuration. */
export interface SqliteWorkloadOptions {
  runs: number;
  /** Tasks per throughput run. */
  n: number;
  /** Tasks of the single-enqueue row. */
  singleN: number;
  /** Latency samples per run. */
  latencySamples: number;
  log(message: string): void;
}

/** A child process with its stdout read line by line. */
class Child {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  readonly process: ChildProcess;

  constructor(args: string[]) {
    this.process = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve(line);
      } else this.lines.push(line);
    });
  }

  /** The next line it prints. */
  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.process.once('exit', (code) =>
        reject(new Error(`bench/sqlite-child.ts ${this.process.spawnargs.slice(3).join(' ')} exited with ${code}`)),
      );
    });
  }

  send(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  kill(): void {
    this.process.kill('SIGKILL');
  }
}

/** Runs a child to its one JSON answer. */
async function once<T>(args: string[]): Promise<T> {
  const child = new Child(args);
  try {
    return JSON.parse(await child.next()) as T;
  } finally {
    child.kill();
  }
}

/** A fresh database file in a directory of its own; removed by the returned function. */
function freshFile(): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'stem-bench-sqlite-'));
  return { file: join(dir, 'queue.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Tasks/s of `workers` worker processes draining a queue pre-filled with `n` tasks. */
async function drain(system: SqliteSystem, n: number, workers: number): Promise<number> {
  const { file, remove } = freshFile();
  const children: Child[] = [];
  try {
    await once(['produce', system, file, 'bulk', String(n)]);
    for (let i = 0; i < workers; i++) children.push(new Child(['work', system, file, String(CONCURRENCY)]));
    for (const child of children) if ((await child.next()) !== 'ready') throw new Error(`${system} worker did not start`);
    const go = Date.now();
    for (const child of children) child.send(`go ${go}`);
    const done = await Promise.all(children.map(async (child) => JSON.parse(await child.next()) as { doneAt: number; processed: number }));
    const processed = done.reduce((sum, answer) => sum + answer.processed, 0);
    if (processed < n) throw new Error(`${system}: ${processed} of ${n} tasks processed`);
    return (n / (Math.max(...done.map((answer) => answer.doneAt)) - go)) * 1_000;
  } finally {
    for (const child of children) child.kill();
    remove();
  }
}

/** Enqueue → result visible, ms, with one worker process of concurrency 1. */
async function latency(system: SqliteSystem, samples: number): Promise<number[]> {
  const { file, remove } = freshFile();
  // The producer's side creates the schema first, so that the worker never races it.
  await once(['produce', system, file, 'single', '0']);
  const worker = new Child(['work', system, file, '1']);
  try {
    if ((await worker.next()) !== 'ready') throw new Error(`${system} worker did not start`);
    worker.send(`go ${Date.now()}`);
    await worker.next();
    return (await once<{ ms: number[] }>(['latency', system, file, String(samples)])).ms;
  } finally {
    worker.kill();
    remove();
  }
}

async function enqueueRate(system: SqliteSystem, mode: 'single' | 'bulk', n: number): Promise<number> {
  const { file, remove } = freshFile();
  try {
    // The schema exists before the timed run (each system migrates on open).
    await once(['produce', system, file, mode, '0']);
    const { ms } = await once<{ ms: number }>(['produce', system, file, mode, String(n)]);
    return (n / ms) * 1_000;
  } finally {
    remove();
  }
}

type Measure = (system: SqliteSystem) => Promise<number[]>;

/** The rows of workload 10, before measuring (for error rows). */
export function sqliteRowShapes(options: Pick<SqliteWorkloadOptions, 'n' | 'singleN'>): Array<Omit<ResultRow, 'stem' | 'peer' | 'runs'>> {
  return metrics(options).flatMap(({ workload, metric, unit, better }) =>
    PEERS.map((peerName) => ({ workload, metric, unit, better, peerName })),
  );
}

function metrics(options: Pick<SqliteWorkloadOptions, 'n' | 'singleN'>) {
  const higher = { unit: 'tasks/s', better: 'higher' as const, metric: 'throughput' };
  const lower = { unit: 'ms', better: 'lower' as const };
  return [
    { workload: `10a enqueue one at a time (sqlite, n=${options.singleN.toLocaleString('en-US')})`, ...higher },
    { workload: '10b enqueue in bulk of 1,000 (sqlite)', ...higher },
    { workload: `10c process pre-filled queue, 1 worker process (sqlite)`, ...higher },
    { workload: `10d process pre-filled queue, 2 worker processes (sqlite)`, ...higher },
    { workload: '10e latency, 1 worker, concurrency 1 (sqlite)', metric: 'enqueue → result visible p50', ...lower },
    { workload: '10e latency, 1 worker, concurrency 1 (sqlite)', metric: 'enqueue → result visible p99', ...lower },
  ];
}

/** Measures workload 10: every system, `runs` times, alternating the order; rows against each peer. */
export async function sqliteRows(options: SqliteWorkloadOptions): Promise<ResultRow[]> {
  const { n, singleN, runs, latencySamples, log } = options;
  const measures: Measure[] = [
    async (system) => [await enqueueRate(system, 'single', singleN)],
    async (system) => [await enqueueRate(system, 'bulk', n)],
    async (system) => [await drain(system, n, 1)],
    async (system) => [await drain(system, n, 2)],
  ];
  const shapes = metrics(options);
  const values = new Map<string, number[]>();
  const add = (key: string, value: number): void => void values.set(key, [...(values.get(key) ?? []), value]);
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const [index, measure] of measures.entries()) {
      for (const system of order) {
        // One system failing leaves its cells empty, not the workload: every published liteque (0.1.3 to 0.8.0) dequeues in an
        // async drizzle transaction, which better-sqlite3 12 rejects ("Transaction function cannot return a promise").
        const value = await measure(system).then(
          ([measured]) => measured!,
          (error: Error) => (log(`${shapes[index]!.workload}, ${system} FAILED: ${error.message}`), Number.NaN),
        );
        log(`${shapes[index]!.workload}, run ${run + 1}/${runs}, ${system}: ${Math.round(value).toLocaleString('en-US')} tasks/s`);
        if (Number.isFinite(value)) add(`${index}:${system}`, value);
      }
    }
    for (const system of order) {
      const ms = (
        await latency(system, latencySamples).catch(
          (error: Error) => (log(`10e latency, ${system} FAILED: ${error.message}`), [] as number[]),
        )
      ).sort((a, b) => a - b);
      if (ms.length === 0) continue;
      const [p50, p99] = [percentile(ms, 50), percentile(ms, 99)];
      log(`10e latency, run ${run + 1}/${runs}, ${system}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
      add(`4:${system}`, p50);
      add(`5:${system}`, p99);
    }
  }
  return shapes.flatMap((shape, index) =>
    PEERS.map((peerName) => {
      const stem = values.get(`${index}:stem`) ?? [];
      const peer = values.get(`${index}:${peerName}`) ?? [];
      return { ...shape, peerName, stem: median(stem), peer: median(peer), runs: Math.min(stem.length, peer.length) };
    }),
  );
}
