import t from 'tap';
import { RedisBroker } from '../../plugins/redis/index.js';
import { boundedQueueContract } from '../contract/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  const namespaces = new WeakMap<object, string>();
  await boundedQueueContract(t, {
    name: 'redis',
    async create() {
      const broker = await RedisBroker.connect(REDIS_URL, { namespace: testNamespace('bounded') });
      namespaces.set(broker, broker.connection.namespace);
      return broker;
    },
    async destroy(broker) {
      await broker.close();
      await deleteNamespace(namespaces.get(broker)!);
    },
  });
}
