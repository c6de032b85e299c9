// A worker process of bench/redis-cluster.ts: consumes the given queues until SIGTERM, printing how many tasks it finished.
import { redis } from '../plugins/redis/index.js';
import { defineTask, Stem } from '../sdk/index.js';

const [url, namespace, queueList, concurrency] = process.argv.slice(2);
const noop = defineTask({ name: 'bench.noop', handler: async () => 1 });
const stem = await Stem.create({ tasks: [noop], plugins: [redis({ url: url!, namespace: namespace! })] });
const worker = stem.worker({ queues: queueList!.split(','), concurrency: Number(concurrency) });
// tasks finished so far, told to the parent every 50 ms while it changes
let done = 0;
let told = 0;
stem.hooks.result.tapPromise('bench', async () => {
  done++;
});
setInterval(() => {
  if (done !== told) process.stdout.write(`done ${(told = done)}\n`);
}, 50).unref();
await worker.start();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void stem.close().finally(() => process.exit(0));
});
