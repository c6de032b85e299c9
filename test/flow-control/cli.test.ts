import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { CONCURRENCY_HEADERS, Stem } from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName } from '../contract/support.js';
import { adminClient, REDIS_URL, requireRedis } from '../redis/redis-test-support.js';

/** Deletes the keys of one queue of the default namespace. */
async function deleteQueueKeys(queue: string): Promise<void> {
  const client = await adminClient();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{stem:${queue}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

if (await requireRedis(t)) {
  t.test('stem worker concurrency-limit changes a key’s limit in the broker and shows the keys', async (t) => {
    const queue = uniqueName('queue');
    t.teardown(() => deleteQueueKeys(queue));
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL })] });
    t.teardown(() => stem.close());
    await stem.enqueueMany(
      Array.from({ length: 5 }, () => ({
        task: 'cli.keyed',
        args: {},
        options: { queue, headers: { [CONCURRENCY_HEADERS.key]: 'tenant-42', [CONCURRENCY_HEADERS.limit]: '1' } },
      })),
    );
    const flags = ['--broker', REDIS_URL, '--queue', queue];

    const shown = await runInProcess(['worker', 'concurrency-limit', ...flags, '--json']);
    t.equal(shown.code, 0, shown.stderr);
    t.same(JSON.parse(shown.stdout), { queue, keys: [{ key: 'tenant-42', running: 1, waiting: 4, limit: 1 }] }, 'one let in, four waiting');

    const raised = await runInProcess(['worker', 'concurrency-limit', 'tenant-42', '3', ...flags]);
    t.equal(raised.code, 0, raised.stderr);
    t.match(raised.stdout, /concurrency limit of tenant-42 on .*: 3/);
    t.same(
      await stem.broker.concurrency!.stats(queue),
      [{ key: 'tenant-42', running: 3, waiting: 2, limit: 3 }],
      'two more let in at once',
    );

    const table = await runInProcess(['worker', 'concurrency-limit', ...flags]);
    t.match(table.stdout, /tenant-42\s+│?\s*3\s+│?\s*2\s+│?\s*3/, 'the table shows key, running, waiting, limit');

    const listed = await runInProcess(['queues', 'list', '--broker', REDIS_URL, '--keys', '--json']);
    t.same(
      (JSON.parse(listed.stdout) as Array<{ queue: string; keys?: unknown }>).find((row) => row.queue === queue)?.keys,
      [{ key: 'tenant-42', running: 3, waiting: 2, limit: 3 }],
      'queues list --keys shows the running and waiting tasks of each key',
    );

    const reset = await runInProcess(['worker', 'concurrency-limit', 'tenant-42', 'default', ...flags]);
    t.equal(reset.code, 0, reset.stderr);
    t.equal((await stem.broker.concurrency!.stats(queue))[0]?.limit, 1, 'back to the limit the tasks carry');

    const bad = await runInProcess(['worker', 'concurrency-limit', 'tenant-42', 'lots', ...flags]);
    t.equal(bad.code, 64, 'a limit that is not a whole number is a usage error');
    t.match(bad.stderr, /concurrency limit of "tenant-42": "lots" is not a limit; give a whole number of 1 or more/);
  });
}
