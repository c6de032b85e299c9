import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Test } from 'tap';

/** The Redis the tests use: STEM_TEST_REDIS_URL, default db 15 of the local server. */
export const REDIS_URL = process.env.STEM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

/**
 * Checks that the test Redis answers. Unreachable: with CI=true the test fails; otherwise it is
 * skipped with a loud message. Returns whether the caller should go on.
 */
export async function requireRedis(t: Test): Promise<boolean> {
  // A loaded machine can take seconds to connect (a 2 s limit failed a CI run at load 17); a server
  // that is down refuses at once, so the few retries cost a second or two.
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 20_000,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => (times < 4 ? 300 : null),
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    const message = `Redis at ${REDIS_URL} is unreachable (${(error as Error).message}): start one or set STEM_TEST_REDIS_URL`;
    if (process.env.CI === 'true' || process.env.CI === '1') {
      t.fail(message);
    } else {
      console.error(`\n!!! SKIPPING the Redis tests: ${message}\n`);
      await t.test(message, { skip: message }, async () => undefined);
    }
    return false;
  } finally {
    client.disconnect();
  }
}

/** A namespace no other test run uses. */
export function testNamespace(label: string): string {
  return `stemtest-${label}-${randomBytes(4).toString('hex')}`;
}

/** A plain client on the test Redis (for hand-written entries, CLIENT KILL, key cleanup). */
export async function adminClient(): Promise<Redis> {
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  await client.connect();
  return client;
}

/** Deletes every key of a namespace (`ns:…` and `{ns:…}…`); returns how many. */
export async function deleteNamespace(namespace: string): Promise<number> {
  const client = await adminClient();
  try {
    let deleted = 0;
    for (const pattern of [`${namespace}:*`, `{${namespace}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await client.del(...keys);
      } while (cursor !== '0');
    }
    return deleted;
  } finally {
    client.disconnect();
  }
}

/**
 * Counts the fetch script's runs for `leasesKey` (a queue's leases key) from now until the test
 * ends: how often a consumer went through the script rather than a plain read.
 */
export async function countFetchScripts(t: Test, leasesKey: string): Promise<{ readonly runs: number }> {
  const { LuaScripts } = await import('../../plugins/redis/lua-scripts.js');
  const call = LuaScripts.call;
  const counter = { runs: 0 };
  LuaScripts.call = (client, name, keys, args) => {
    if (name === 'fetch' && keys[0] === leasesKey) counter.runs++;
    return call.call(LuaScripts, client, name, keys, args);
  };
  t.teardown(() => {
    LuaScripts.call = call;
  });
  return counter;
}
