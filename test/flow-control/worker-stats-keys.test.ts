import t from 'tap';
import { Redis } from 'ioredis';
import { control } from '../../plugins/control/index.js';
import { redis } from '../../plugins/redis/index.js';
import { defineTask, Stem } from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName, waitFor } from '../contract/support.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';

/** Deletes every key of one test: its queue and control namespace share the unique name `id`. */
async function deleteKeysOf(id: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${id}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
    for (const set of ['stem:queues', 'stem:broadcasts']) {
      const members = (await client.smembers(set)).filter((member) => member.includes(id));
      if (members.length > 0) await client.srem(set, ...members);
    }
  } finally {
    client.disconnect();
  }
}

if (await requireRedis(t)) {
  t.test('stem worker stats shows how many tasks each worker runs per concurrency key', async (t) => {
    const id = uniqueName('keys');
    t.teardown(() => deleteKeysOf(id));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    const sync = defineTask({
      name: 'keys.sync',
      options: { queue: id, concurrencyKey: (args: { tenant: string }) => args.tenant, concurrencyLimit: 2 },
      handler: async () => {
        running++;
        await released;
        running--;
      },
    });
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL }), control({ namespace: id })], tasks: [sync] });
    t.teardown(() => stem.close());
    const worker = stem.worker({ queues: [id], concurrency: 10 });
    await worker.start();
    t.teardown(() => worker.stop({ graceMs: 0 }));
    await stem.enqueueMany([
      ...Array.from({ length: 3 }, () => ({ task: sync, args: { tenant: 'acme' } })),
      { task: sync, args: { tenant: 'globex' } },
    ]);
    t.ok(await waitFor(() => running === 3, 60_000), 'two of acme and one of globex run; the third of acme waits');
    // Named (-w): the request ends once the worker answered, 30 s is a ceiling (a broadcast took 5 s, a stall could outlast).
    const flags = ['--broker', REDIS_URL, '--namespace', id, '-w', worker.id, '--timeout', '30s'];

    const stats = await runInProcess(['worker', 'stats', '--json', ...flags]);
    t.equal(stats.code, 0, stats.stderr);
    const [answer] = JSON.parse(stats.stdout) as Array<{ runningKeys: unknown }>;
    t.same(
      answer?.runningKeys,
      [
        { queue: id, key: 'acme', running: 2 },
        { queue: id, key: 'globex', running: 1 },
      ],
      'runningKeys: per queue and key',
    );
    const table = await runInProcess(['worker', 'stats', ...flags]);
    t.equal(table.code, 0, table.stderr);
    t.match(table.stdout, /keys/, 'a keys column');
    t.match(table.stdout, /acme×2 globex×1/, 'most first');
    release();
  });
}
