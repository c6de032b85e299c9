// A JavaScript config: the CLI loads it without any TypeScript tooling. Redis, because the
// worker and `stem enqueue` are separate processes (the memory default lives in one process).
import { defineConfig, defineTask } from 'stem';
import { redis } from 'stem/plugins/redis';

const add = defineTask({ name: 'consumer.add', handler: async ({ a, b }) => a + b });

export default defineConfig({
  plugins: [redis({ url: process.env.CONSUMER_REDIS_URL, namespace: process.env.CONSUMER_NAMESPACE })],
  tasks: [add],
  defaultQueue: 'default',
});
