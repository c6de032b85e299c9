// One worker process of the chaos harness: a Stem worker on Redis or Postgres whose handler
// sleeps a little and then records "<task id> <pid> <started> <done>" in a side table the faults do not touch.
import { Redis } from 'ioredis';
import pg from 'pg';
import { Stem, defineTask, installShutdownHandlers, type StemPlugin } from '../../sdk/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';

const env = process.env;
const backend = env.CHAOS_BACKEND;
const queue = env.CHAOS_QUEUE ?? 'chaos';

let record: (taskId: string, startedAt: number) => Promise<void>;
let plugin: StemPlugin;
let closeRecorder: () => Promise<void>;
if (backend === 'redis') {
  const recorder = new Redis(env.CHAOS_RECORD_URL!, { connectionName: 'chaos-recorder' });
  recorder.on('error', () => undefined);
  const [runsKey, doneKey] = [env.CHAOS_RUNS_KEY!, env.CHAOS_DONE_KEY!];
  record = async (taskId, startedAt) => {
    const replies = await recorder
      .multi()
      .rpush(runsKey, `${taskId} ${process.pid} ${startedAt} ${Date.now()}`)
      .hincrby(doneKey, taskId, 1)
      .exec();
    for (const [error] of replies ?? []) if (error) throw error;
  };
  closeRecorder = async () => void recorder.disconnect();
  plugin = redis({ url: env.CHAOS_URL!, namespace: env.CHAOS_NAMESPACE!, blockMs: 1_000 });
} else if (backend === 'postgres') {
  const schema = env.CHAOS_SCHEMA!;
  // The side table is on the shared test database even when the queue's server is one the harness restarts.
  const recorder = new pg.Pool({
    connectionString: env.CHAOS_RECORD_URL ?? env.CHAOS_URL!,
    max: 4,
    application_name: `recorder-${env.CHAOS_APP}`,
  });
  recorder.on('error', () => undefined);
  record = async (taskId, startedAt) =>
    void (await recorder.query(`insert into "${schema}".chaos_runs (task_id, pid, started_at, done_at) values ($1, $2, $3, $4)`, [
      taskId,
      process.pid,
      startedAt,
      Date.now(),
    ]));
  closeRecorder = () => recorder.end();
  plugin = postgres({ url: env.CHAOS_URL!, schema, applicationName: env.CHAOS_APP!, pollIntervalMs: 250, migrate: false });
} else {
  throw new Error(`CHAOS_BACKEND must be redis or postgres, got ${JSON.stringify(backend)}`);
}

const work = defineTask({
  name: 'chaos.work',
  // A failed side-table write (a fault hit it) is retried quickly; the queue's own retries are what is under test.
  options: { maxRetries: 50, retryPolicy: { backoff: 'fixed', delayMs: 50, jitter: false } },
  handler: async (args: { n: number; ms: number }, ctx) => {
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    await record(ctx.id, startedAt);
    return args.n;
  },
});

const stem = await Stem.create({ plugins: [plugin], tasks: [work], trackQueued: false });
const worker = stem.worker({
  queues: [queue],
  concurrency: Number(env.CHAOS_CONCURRENCY ?? 8),
  shutdownGrace: '15s',
  heartbeatInterval: '2s',
});
// Faults make the kernel warn (a flush retried, a fetch failed); the harness reads only "ready".
process.removeAllListeners('warning');
process.on('warning', () => undefined);
installShutdownHandlers(worker, async () => {
  await stem.close().catch(() => undefined);
  await closeRecorder().catch(() => undefined);
  process.exit(0);
});
await worker.start();
process.stdout.write(`chaos-worker ready ${process.pid}\n`);
