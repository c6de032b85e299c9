import t from 'tap';
import { Stem, defineTask } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  t.test("every task completes when the worker's Redis connections are killed mid-run", async (t) => {
    const namespace = testNamespace('kill');
    const queue = 'kill-queue';
    const ran = new Set<number>();
    const square = defineTask({
      name: 'kill.square',
      handler: async (args: { n: number }) => {
        await new Promise((resolve) => setTimeout(resolve, 25));
        ran.add(args.n);
        return args.n * args.n;
      },
    });
    const stem = await Stem.create({
      // The default defaultVisibilityTimeoutMs (30 s): an entry left pending without a lease would
      // wait that long for the fetch script's sweep, past the results' timeout. A read whose reply
      // a killed connection lost (ioredis sends it again) leases what it read in the same step, so
      // those entries come back when their 3 s lease runs out.
      plugins: [redis({ url: REDIS_URL, namespace, blockMs: 1_000 })],
      tasks: [square],
      visibilityTimeout: '3s',
    });
    const admin = await adminClient();
    t.teardown(async () => {
      // Also when an await below throws (a result timed out): a worker left running kept the test
      // process alive, and tap waited for it with no output until its own timeout.
      await stem.close();
      admin.disconnect();
      await deleteNamespace(namespace);
    });
    const handles = await stem.enqueueMany(Array.from({ length: 200 }, (_, n) => ({ task: square, args: { n }, options: { queue } })));
    const worker = stem.worker({ queues: [queue], concurrency: 8 });
    await worker.start();
    let kills = 0;
    let rounds = 0;
    // Kill every connection of the namespace (command, blocking, subscriber) every 60ms while tasks run.
    while (ran.size < 200 && rounds < 100) {
      rounds++;
      await new Promise((resolve) => setTimeout(resolve, 60));
      const list = (await admin.call('CLIENT', 'LIST')) as string;
      for (const line of list.split('\n')) {
        const id = /id=(\d+)/.exec(line)?.[1];
        const name = /name=(\S*)/.exec(line)?.[1] ?? '';
        if (id !== undefined && name.startsWith(`stem:${namespace}`)) kills += Number(await admin.call('CLIENT', 'KILL', 'ID', id));
      }
    }
    t.ok(kills >= 4, `killed ${kills} connections over ${rounds} rounds`);
    const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 30_000 })));
    t.same(
      results,
      Array.from({ length: 200 }, (_, n) => n * n),
      'every task completed with its result',
    );
    t.equal(ran.size, 200);
    await worker.stop();
    await stem.close();
  });
}
