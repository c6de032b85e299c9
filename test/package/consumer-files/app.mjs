// A plain Node ESM program using the installed package: a task in memory, and every export path.
import { Stem, defineTask } from 'stem';
import { loadConfig } from 'stem/config';
import { postgres } from 'stem/plugins/postgres';
import { redis } from 'stem/plugins/redis';
import { brokerContract } from 'stem/testing';

const add = defineTask({ name: 'math.add', handler: async ({ a, b }) => a + b });
const stem = await Stem.create({ tasks: [add] });
const worker = stem.worker({ queues: ['default'] });
await worker.start();
const handle = await stem.enqueue(add, { a: 2, b: 3 });
const sum = await handle.result({ timeoutMs: 30_000 });
await worker.stop();
await stem.close();
console.log(JSON.stringify({ sum, exports: [loadConfig, postgres, redis, brokerContract].map((value) => typeof value) }));
