import t from 'tap';
import { Stem } from 'stem';
import { redis, type RedisBroker } from '../../plugins/redis/index.js';
import { waitFor } from '../helpers/wait.js';
import { wakeOnTimeCases } from '../helpers/wake-on-time-cases.js';
import { adminClient, deleteNamespace, REDIS_URL, requireRedis, testNamespace } from './redis-test-support.js';

// Idle consumers block for a minute (blockMs): only a wake-up on time lets these tasks run within the tests' waits.
if (await requireRedis(t)) {
  const admin = await adminClient();
  const namespace = testNamespace('wake');
  const stems: Stem[] = [];
  t.teardown(async () => {
    await Promise.all(stems.map((stem) => stem.close()));
    await deleteNamespace(namespace);
    admin.disconnect();
  });
  wakeOnTimeCases(t, {
    async stem(tasks, extra = []) {
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace, blockMs: 60_000 }), ...extra], tasks });
      stems.push(stem);
      return stem;
    },
    async idle(stem) {
      // the consumer's connection is blocked in XREADGROUP (CLIENT LIST flag b)
      const prefix = `name=stem:${(stem.service('broker') as RedisBroker).connection.namespace}:consumer:`;
      await waitFor(
        async () =>
          ((await admin.call('CLIENT', 'LIST')) as string).split('\n').some((line) => line.includes(prefix) && / flags=b /.test(line)),
        'the worker blocked waiting for work',
      );
    },
  });
}
