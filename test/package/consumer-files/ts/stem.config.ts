// A TypeScript config: the CLI loads it through tsx, which the project installs itself.
import { defineConfig, type StemConfig } from 'stem';
import { redis } from 'stem/plugins/redis';

const url: string = process.env.CONSUMER_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const config: StemConfig = {
  plugins: [redis({ url, namespace: process.env.CONSUMER_NAMESPACE ?? 'consumer' })],
  defaultQueue: 'default',
};
export default defineConfig(config);
