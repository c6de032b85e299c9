import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { taskRetryCases } from '../helpers/task-retry-cases.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  const namespace = testNamespace('retry');
  t.teardown(() => deleteNamespace(namespace));
  t.test('stem.retry and stem.listTasks on Redis', (t) => taskRetryCases(t, () => [redis({ url: REDIS_URL, namespace })]));
}
