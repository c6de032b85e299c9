// One worker process of the chaos harness: a Stem worker on Redis or Postgres whose handler
// sleeps a little and then records "<task id> <pid> <started> <done>" in a side table the faults do not touch.
import { Stem, installShutdownHandlers, type StemPlugin } from '../../sdk/index.js';
import { isolation } from '../../plugins/isolation/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { closeRecorder } from './chaos-recorder.js';
import { work } from './chaos-work.js';

const env = process.env;
const backend = env.CHAOS_BACKEND;
const queue = env.CHAOS_QUEUE ?? 'chaos';

const plugins: StemPlugin[] = [
  backend === 'redis'
    ? redis({ url: env.CHAOS_URL!, namespace: env.CHAOS_NAMESPACE!, blockMs: 1_000 })
    : postgres({ url: env.CHAOS_URL!, schema: env.CHAOS_SCHEMA!, applicationName: env.CHAOS_APP!, pollIntervalMs: 250, migrate: false }),
];
// CHAOS_ISOLATE=threads|processes: the handlers run in the isolation plugin's children.
const isolate = env.CHAOS_ISOLATE;
if (isolate === 'threads' || isolate === 'processes') plugins.push(isolation({ pool: isolate }));
else if (isolate !== undefined && isolate !== '')
  throw new Error(`CHAOS_ISOLATE must be threads or processes, got ${JSON.stringify(isolate)}`);

const stem = await Stem.create({ plugins, tasks: [work], trackQueued: false });
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
