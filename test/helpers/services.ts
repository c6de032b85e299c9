import { Redis } from 'ioredis';
import type { Test } from 'tap';

/** The Redis the tests use: STEM_TEST_REDIS_URL, default db 15 of the local server. */
export const TEST_REDIS_URL = process.env.STEM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

/**
 * True when the test Redis answers. When it does not: with CI=true the test fails; otherwise it
 * is skipped with a loud message.
 */
export async function redisAvailable(t: Test): Promise<boolean> {
  const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    const message = `Redis at ${TEST_REDIS_URL} is unreachable (${(error as Error).message}): start it or set STEM_TEST_REDIS_URL`;
    if (process.env.CI === 'true' || process.env.CI === '1') t.fail(message);
    else {
      process.stderr.write(`\n!!! SKIPPING: ${message}\n\n`);
      t.comment(`SKIP: ${message}`);
      await t.test(message, { skip: message }, async () => undefined);
    }
    return false;
  } finally {
    client.disconnect();
  }
}
