/**
 * One process of workload 10 (SQLite queues): a producer or a worker of Stem's SQLite plugin,
 * plainjob or liteque, each through its own API, with the same no-op task. Driven by
 * bench/sqlite-workloads.ts over stdin/stdout (one JSON line per answer).
 *
 *   produce <system> <file> single|bulk <n>   → {"ms": …}
 *   work <system> <file> <concurrency>        → "ready"; on stdin "go <epoch ms>" starts, → {"doneAt": …, "processed": …} once the queue is empty
 *   latency <system> <file> <samples>         → {"ms": [enqueue → result visible, …]} (a worker must run)
 */
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { better, defineQueue, defineWorker } from 'plainjob';
import { buildDBClient, Runner, SqliteQueue } from 'liteque';
import { defineTask, Stem } from '../sdk/index.js';
import { sqlite } from '../plugins/sqlite/index.js';

export type SqliteSystem = 'stem' | 'plainjob' | 'liteque';

/** The peers poll for jobs this often (their defaults are 1 s); Stem is woken by the change monitor. */
const PEER_POLL_MS = 10;
const QUEUE = 'bench';
const TYPE = 'noop';

interface Client {
  enqueueOne(n: number): Promise<string | number>;
  enqueueBulk(items: number[]): Promise<void>;
  /** Resolves once the task `id` has finished, as seen through the system's own API (or its table). */
  finished(id: string | number): Promise<void>;
  /** Waiting plus running jobs. */
  backlog(): Promise<number>;
  startWorker(concurrency: number, onDone: () => void): Promise<void>;
}

const noop = defineTask({ name: TYPE, options: { queue: QUEUE }, handler: async () => undefined });

async function open(system: SqliteSystem, file: string): Promise<Client> {
  if (system === 'stem') {
    const stem = await Stem.create({ plugins: [sqlite({ path: file })], tasks: [noop] });
    return {
      enqueueOne: async () => (await stem.enqueue(noop, {})).id,
      enqueueBulk: async (items) => void (await stem.enqueueMany(items.map(() => ({ task: noop, args: {} })))),
      finished: async (id) => void (await stem.handle(String(id)).result({ timeoutMs: 60_000 })),
      backlog: async () => (await stem.broker.pending(QUEUE)) + (await stem.broker.inflight(QUEUE)),
      async startWorker(concurrency, onDone) {
        stem.signals.on('task-succeeded', onDone);
        await stem.worker({ queues: [QUEUE], concurrency }).start();
      },
    };
  }
  if (system === 'plainjob') {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never;
    const queue = defineQueue({ connection: better(db), logger: quiet });
    const status = db.prepare('select status from plainjob_jobs where id = ?').pluck();
    return {
      enqueueOne: async () => queue.add(TYPE, {}).id,
      enqueueBulk: async (items) =>
        void queue.addMany(
          TYPE,
          items.map(() => ({})),
        ),
      finished: (id) => poll(() => status.get(id) === 2),
      backlog: async () => queue.countJobs({ status: 0 as never }) + queue.countJobs({ status: 1 as never }),
      async startWorker(_concurrency, onDone) {
        // plainjob runs one job at a time per worker.
        void defineWorker(TYPE, async () => undefined, { queue, pollIntervall: PEER_POLL_MS, onCompleted: onDone, logger: quiet }).start();
      },
    };
  }
  const db = buildDBClient(file, { runMigrations: true });
  const queue = new SqliteQueue<Record<string, never>>(QUEUE, db, { defaultJobArgs: { numRetries: 0 }, keepFailedJobs: false });
  const raw = new Database(file, { readonly: true });
  const row = raw.prepare('select 1 from tasks where id = ?').pluck();
  return {
    enqueueOne: async () => (await queue.enqueue({}))!.id,
    enqueueBulk: async (items) => {
      for (const _ of items) await queue.enqueue({});
    },
    // A completed liteque job is deleted.
    finished: (id) => poll(() => row.get(id) === undefined),
    backlog: async () => {
      const stats = await queue.stats();
      return stats.pending + stats.pending_retry + stats.running;
    },
    async startWorker(concurrency, onDone) {
      void new Runner(
        queue,
        { run: async () => undefined, onComplete: async () => onDone() },
        { concurrency, pollIntervalMs: PEER_POLL_MS, timeoutSecs: 60 },
      ).run();
    },
  };
}

async function poll(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 1));
}

const [role, system, file, arg, arg2] = process.argv.slice(2) as [string, SqliteSystem, string, string, string?];
const client = await open(system, file);
const reply = (value: unknown): void => void process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);

if (role === 'produce') {
  const n = Number(arg2);
  const began = performance.now();
  if (arg === 'single') for (let i = 0; i < n; i++) await client.enqueueOne(i);
  else for (let i = 0; i < n; i += 1_000) await client.enqueueBulk(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => i + k));
  reply({ ms: performance.now() - began });
  process.exit(0);
} else if (role === 'latency') {
  const samples = Number(arg);
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    await client.finished(await client.enqueueOne(i));
    ms.push(performance.now() - began);
  }
  reply({ ms });
  process.exit(0);
} else if (role === 'work') {
  let processed = 0;
  const lines = createInterface({ input: process.stdin });
  reply('ready');
  for await (const line of lines) {
    if (!line.startsWith('go')) continue;
    await client.startWorker(Number(arg), () => void processed++);
    // The queue was filled before "go": done when nothing waits or runs any more.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if ((await client.backlog()) === 0) break;
    }
    reply({ doneAt: Date.now(), processed });
  }
}
