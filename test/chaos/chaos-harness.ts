import { Stem } from '../../sdk/index.js';
import { PostgresChaosTarget, RedisChaosTarget, type ChaosTarget, type RecordedRun, type RestartHow } from './chaos-targets.js';
import { WorkerPool } from './worker-pool.js';

/**
 * The faults the harness can inject. `redis-restart` (SIGTERM: Redis shuts down cleanly) and
 * `redis-kill` (SIGKILL) restart a Redis that persists with AOF mid-burst; `pg-restart` restarts a
 * Postgres cluster of the harness's own with `pg_ctl restart -m immediate` mid-burst; `redis-wipe`
 * restarts a Redis without persistence while the workers are idle (it comes back empty).
 */
export type FaultName =
  | 'kill-9'
  | 'client-kill'
  | 'pg-terminate'
  | 'redis-restart'
  | 'redis-kill'
  | 'redis-wipe'
  | 'pg-restart'
  | 'sigterm';

/** The server restarts done mid-burst, and how each takes its server down. */
const MID_BURST_RESTARTS: Partial<Record<FaultName, RestartHow>> = {
  'redis-restart': 'sigterm',
  'redis-kill': 'sigkill',
  'pg-restart': 'immediate',
};

/** The AOF fsync policies of Redis (`appendfsync`). */
export type AppendFsync = 'always' | 'everysec' | 'no';
/** Where the workers run. */
export type Backend = 'redis' | 'postgres';

/** One scenario: a fault against a backend. */
export interface Scenario {
  fault: FaultName;
  backend: Backend;
}

/** Every scenario, in the order a full run goes through them. */
export const ALL_SCENARIOS: readonly Scenario[] = [
  { fault: 'kill-9', backend: 'redis' },
  { fault: 'client-kill', backend: 'redis' },
  { fault: 'redis-restart', backend: 'redis' },
  { fault: 'redis-kill', backend: 'redis' },
  { fault: 'redis-wipe', backend: 'redis' },
  { fault: 'sigterm', backend: 'redis' },
  { fault: 'kill-9', backend: 'postgres' },
  { fault: 'pg-terminate', backend: 'postgres' },
  { fault: 'pg-restart', backend: 'postgres' },
  { fault: 'sigterm', backend: 'postgres' },
];

/** How big and how rough a scenario is. */
export interface ChaosOptions {
  /** Tasks enqueued (default 5000). */
  tasks: number;
  /** Worker processes kept alive (default 4). */
  workers: number;
  /** Concurrency of each worker (default 8). */
  concurrency: number;
  /** Each handler sleeps a random time in this range (ms), so that work is in flight when a fault hits. */
  taskMs: [number, number];
  /** A repeated fault (kill -9, connection kills) strikes this often (default 1000 ms). */
  faultEveryMs: number;
  /** The tasks' lease (visibility timeout): how soon a dead worker's tasks run elsewhere (default 2000 ms). */
  leaseMs: number;
  /** At most this many strikes of a repeated fault (default: no limit, strike while work is in flight). */
  maxStrikes: number;
  /** How long Redis stays down in redis-restart, redis-kill and redis-wipe (default 1500 ms). */
  downMs: number;
  /** The share of the tasks finished when a mid-burst restart strikes (default 0.25: 1,250 of 5,000). */
  restartAt: number;
  /** The AOF fsync policy of the Redis that redis-restart and redis-kill restart (default `always`). */
  appendfsync: AppendFsync;
  /** A scenario that has not finished by then counts what it has (default 180 s). */
  timeoutMs: number;
  /** The owned Redis server's port (default: a free one). */
  redisPort?: number;
  /** Progress lines (default: none). */
  log: (line: string) => void;
}

/** What a scenario ended with. */
export interface ChaosSummary extends Scenario {
  enqueued: number;
  completed: number;
  lost: number;
  /** Tasks whose handler ran to the end more than once. */
  duplicated: number;
  /**
   * Duplicates the fault does not explain. kill-9: none of their runs was on a killed worker;
   * a mid-burst restart: the task was not in flight (delivered, not acknowledged) at the restart;
   * sigterm: any.
   */
  unexplained: number;
  /** Mid-burst restarts: how many tasks were in flight at the restart (the bound on duplicates). */
  inFlight?: number;
  deadLetters: number;
  /** What was injected, e.g. "6 workers killed". */
  injected: string;
  elapsedMs: number;
  /** True when the run holds the guarantees: nothing lost, and no unexplained duplicate. */
  ok: boolean;
}

/** The defaults of a full `npm run test:chaos`. */
export const DEFAULT_CHAOS_OPTIONS: ChaosOptions = {
  tasks: 5_000,
  workers: 4,
  concurrency: 8,
  taskMs: [20, 60],
  faultEveryMs: 1_000,
  maxStrikes: Infinity,
  leaseMs: 2_000,
  downMs: 1_500,
  restartAt: 0.25,
  appendfsync: 'always',
  timeoutMs: 180_000,
  log: () => undefined,
};

/** The one-line summary: `chaos: enqueued N, completed N, lost 0, duplicated K (fault on backend: …)`. */
export function formatSummary(summary: ChaosSummary): string {
  const extra = [summary.injected];
  if (summary.unexplained > 0) extra.push(`${summary.unexplained} duplicates not explained by the fault`);
  if (summary.deadLetters > 0) extra.push(`${summary.deadLetters} dead letters`);
  extra.push(`${(summary.elapsedMs / 1000).toFixed(1)}s`);
  return `chaos: enqueued ${summary.enqueued}, completed ${summary.completed}, lost ${summary.lost}, duplicated ${summary.duplicated} (${summary.fault} on ${summary.backend}: ${extra.join(', ')})`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs one scenario: starts worker processes, enqueues the tasks, injects the fault while they
 * run, waits until every task ran and the queue is empty (or the time is up), stops the workers
 * and counts lost and duplicated tasks from the side table. Cleans up processes, keys and schema.
 */
export async function runChaos(scenario: Scenario, options: Partial<ChaosOptions> = {}): Promise<ChaosSummary> {
  const opts: ChaosOptions = { ...DEFAULT_CHAOS_OPTIONS, ...options };
  const started = Date.now();
  const restart = MID_BURST_RESTARTS[scenario.fault];
  const target: ChaosTarget =
    scenario.backend === 'redis'
      ? await RedisChaosTarget.open(opts.redisPort, restart === undefined ? 'none' : `aof-${opts.appendfsync}`)
      : await PostgresChaosTarget.open(scenario.fault === 'pg-restart');
  const pool = new WorkerPool({ ...target.workerEnv(), CHAOS_CONCURRENCY: String(opts.concurrency) });
  const deadline = started + opts.timeoutMs;
  const ids: string[] = [];
  let injected = '';
  let inFlight: Set<string> | undefined;
  try {
    await pool.start(opts.workers);
    opts.log(`${scenario.fault}/${scenario.backend}: ${opts.workers} workers ready`);
    const enqueue = async (count: number): Promise<void> => {
      const producer = await Stem.create({ plugins: target.producerPlugins(), trackQueued: false });
      try {
        for (let from = 0; from < count; from += 500) {
          const batch = Array.from({ length: Math.min(500, count - from) }, (_, i) => ({
            task: 'chaos.work',
            args: { n: ids.length + from + i, ms: opts.taskMs[0] + Math.floor(Math.random() * (opts.taskMs[1] - opts.taskMs[0] + 1)) },
            // The lease travels in the envelope: short, so that a killed worker's tasks come back soon.
            options: { queue: target.queue, visibilityTimeout: opts.leaseMs },
          }));
          const handles = await producer.enqueueMany(batch);
          for (const handle of handles) ids.push(handle.id);
        }
      } finally {
        await producer.close();
      }
    };
    const completed = (): Promise<number> => target.completedCount().catch(() => 0);
    const allDone = async (): Promise<boolean> => {
      while (Date.now() < deadline) {
        if ((await completed()) >= ids.length && (await target.queueEmpty().catch(() => false))) return true;
        await sleep(100);
      }
      return false;
    };
    const reached = async (share: number): Promise<void> => {
      while (Date.now() < deadline && (await completed()) < ids.length * share) await sleep(20);
    };

    switch (scenario.fault) {
      case 'redis-restart':
      case 'redis-kill':
      case 'pg-restart': {
        if (target.restartServer === undefined || restart === undefined)
          throw new Error(`${scenario.fault} needs a server of the harness's own`);
        await enqueue(opts.tasks);
        await reached(opts.restartAt);
        const done = await completed();
        // What was delivered and not acknowledged when the server went down, read from the restarted
        // server before any worker reaches it: the only tasks the restart may run twice.
        const downAt = Date.now();
        inFlight = new Set(await target.restartServer(restart, opts.downMs));
        opts.log(`${scenario.fault}/${scenario.backend}: down at ${downAt}, up at ${Date.now()}, ${inFlight.size} in flight`);
        const settings =
          scenario.backend === 'redis' ? `AOF appendfsync ${opts.appendfsync}, down ${opts.downMs}ms` : 'pg_ctl restart -m immediate';
        injected = `${restart} restart after ${done} of ${ids.length} tasks, ${inFlight.size} in flight (${settings})`;
        await allDone();
        break;
      }
      case 'redis-wipe': {
        if (target.restartServer === undefined) throw new Error('redis-wipe needs the Redis backend');
        const first = Math.floor(opts.tasks / 2);
        await enqueue(first);
        await allDone();
        // The workers are idle, blocked in XREAD: the server goes away under them and comes back empty.
        await target.restartServer('sigkill', opts.downMs);
        injected = `restarted without persistence after ${first} tasks, down ${opts.downMs}ms`;
        await enqueue(opts.tasks - first);
        await allDone();
        break;
      }
      case 'sigterm': {
        await enqueue(opts.tasks);
        let terminated = 0;
        for (const share of [0.25, 0.6]) {
          await reached(share);
          const codes = await pool.terminateAll();
          terminated += codes.length;
          if (codes.some((code) => code !== 0)) opts.log(`sigterm: exit codes ${codes.join(', ')}`);
          await pool.start(opts.workers);
        }
        injected = `${terminated} workers stopped with SIGTERM mid-burst (all at once, twice)`;
        await allDone();
        break;
      }
      default: {
        await enqueue(opts.tasks);
        await reached(0.05);
        let strikes = 0;
        let hits = 0;
        let stop = false;
        const striking = (async () => {
          while (!stop && strikes < opts.maxStrikes && Date.now() < deadline && (await completed()) < ids.length) {
            // Strike only with every worker up: killing replacements before they start would stop all progress.
            if (pool.readyCount() < opts.workers) {
              await sleep(50);
              continue;
            }
            strikes++;
            if (scenario.fault === 'kill-9') hits += pool.killRandom() === undefined ? 0 : 1;
            else hits += await target.killConnections().catch(() => 0);
            await sleep(opts.faultEveryMs);
          }
        })();
        await allDone();
        opts.log(`${scenario.fault}/${scenario.backend}: all done after ${Date.now() - started}ms`);
        stop = true;
        await striking;
        injected = scenario.fault === 'kill-9' ? `${hits} workers killed` : `${hits} connections killed in ${strikes} strikes`;
        break;
      }
    }
    await pool.stop();
    return await summarise(scenario, target, ids, pool.killed, inFlight, injected, started, opts.log);
  } finally {
    pool.killAllNow();
    await target.cleanup();
  }
}

async function summarise(
  scenario: Scenario,
  target: ChaosTarget,
  ids: readonly string[],
  killed: ReadonlySet<number>,
  inFlight: ReadonlySet<string> | undefined,
  injected: string,
  started: number,
  log: (line: string) => void,
): Promise<ChaosSummary> {
  const runsById = new Map<string, RecordedRun[]>();
  for (const run of await target.runs()) {
    const runs = runsById.get(run.taskId);
    if (runs) runs.push(run);
    else runsById.set(run.taskId, [run]);
  }
  let completed = 0;
  let duplicated = 0;
  let unexplained = 0;
  for (const id of ids) {
    const runs = runsById.get(id);
    if (runs === undefined) continue;
    completed++;
    if (runs.length < 2) continue;
    const pids = runs.map((run) => run.pid);
    duplicated++;
    // kill -9: a second run is explained only by a first one on a worker that was killed; a
    // restart only by the task being in flight (delivered, not acknowledged) when the server went.
    if (
      scenario.fault === 'sigterm' ||
      (scenario.fault === 'kill-9' && !pids.some((pid) => killed.has(pid))) ||
      (inFlight !== undefined && !inFlight.has(id))
    ) {
      unexplained++;
      log(
        `${scenario.fault}/${scenario.backend}: unexplained duplicate ${id}: ${runs.map((run) => `pid ${run.pid} ran ${run.startedAt}-${run.doneAt}`).join(', ')}`,
      );
    }
  }
  const lost = ids.length - completed;
  return {
    ...scenario,
    enqueued: ids.length,
    completed,
    lost,
    duplicated,
    unexplained,
    ...(inFlight === undefined ? {} : { inFlight: inFlight.size }),
    deadLetters: await target.deadLetters().catch(() => -1),
    injected,
    elapsedMs: Date.now() - started,
    ok: lost === 0 && unexplained === 0,
  };
}
