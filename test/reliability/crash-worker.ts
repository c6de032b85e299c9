// A worker process for the crash test: `poison.crash` exits the process, `poison.ok` records its n.
import { Redis } from 'ioredis';
import { Stem, defineTask, installShutdownHandlers } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';

const env = process.env;
const recorder = new Redis(env.CRASH_REDIS_URL!);
const crash = defineTask({
  name: 'poison.crash',
  handler: async () => {
    await recorder.incr(`${env.CRASH_NAMESPACE}:crashes`);
    process.exit(3);
  },
});
const ok = defineTask({
  name: 'poison.ok',
  handler: async (args: { n: number }) => {
    await recorder.sadd(`${env.CRASH_NAMESPACE}:ok`, String(args.n));
    return args.n;
  },
});
const stem = await Stem.create({
  plugins: [redis({ url: env.CRASH_REDIS_URL!, namespace: env.CRASH_NAMESPACE!, blockMs: 500 })],
  tasks: [crash, ok],
  maxRedeliveries: Number(env.CRASH_MAX_REDELIVERIES),
});
// One task at a time: a crash takes down only the poison task, never an innocent one beside it.
const worker = stem.worker({ queues: ['poison'], concurrency: 1 });
installShutdownHandlers(worker, async () => {
  await stem.close();
  recorder.disconnect();
  process.exit(0);
});
await worker.start();
process.stdout.write('crash-worker ready\n');
