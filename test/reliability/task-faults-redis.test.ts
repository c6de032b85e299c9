import t from 'tap';
import { Stem } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { LATE_FAULT, storeScenarios } from './task-faults-harness.js';

// One task's fault is that task's alone, on Redis: the worker runs in a child process.
if (await requireRedis(t)) {
  const namespace = testNamespace('faults');
  t.teardown(() => deleteNamespace(namespace));
  const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
  t.teardown(() => stem.close());
  await storeScenarios(t, stem, { FAULT_STORE: 'redis', FAULT_URL: REDIS_URL, FAULT_NAMESPACE: namespace }, [LATE_FAULT]);
}
