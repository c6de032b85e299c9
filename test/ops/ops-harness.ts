import type { Test } from 'tap';
import { Stem, type StemConfig, type StemPlugin, type TaskDefinition } from 'stem';
import { redis } from '../../plugins/redis/index.js';
import { control } from '../../plugins/control/index.js';
import { rateLimit } from '../../plugins/rate-limit/index.js';
import { revoke } from '../../plugins/revoke/index.js';
import { unique } from '../../plugins/unique/index.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { deleteNamespace, testNamespace } from '../redis/redis-test-support.js';

/** Processes of one test sharing a Redis key namespace (which is also their control namespace). */
export interface OpsCluster {
  /** The Redis key prefix and control namespace of this test. */
  namespace: string;
  /** A new Stem on the test Redis with the operations plugins: as if it were another process. */
  stem(tasks: TaskDefinition[], extra?: StemPlugin[]): Promise<Stem>;
}

/**
 * An isolated cluster on the test Redis, or undefined when Redis is unreachable (the test is then
 * skipped loudly, or failed with CI=true). Everything is closed and the keys deleted at teardown.
 */
export async function opsCluster(t: Test, label: string): Promise<OpsCluster | undefined> {
  if (!(await requireRedis(t))) return undefined;
  const namespace = testNamespace(label);
  const stems: Stem[] = [];
  t.teardown(async () => {
    await Promise.all(stems.map((stem) => stem.close()));
    await deleteNamespace(namespace);
  });
  return {
    namespace,
    async stem(tasks, extra = []) {
      // The namespace rides on the config, as loadConfig resolves it for the CLI; the plugins read it from there.
      const config: StemConfig & { namespace: string } = {
        namespace,
        tasks,
        plugins: [redis({ url: REDIS_URL, namespace }), control(), revoke({ syncInterval: '200ms' }), rateLimit(), unique(), ...extra],
      };
      const stem = await Stem.create(config);
      stems.push(stem);
      return stem;
    },
  };
}
