import t from 'tap';
import { RedisBroker } from '../../plugins/redis/index.js';
import { concurrencyContract } from '../contract/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

if (await requireRedis(t)) {
  await concurrencyContract(t, {
    name: 'redis',
    create: () => RedisBroker.connect(REDIS_URL, { namespace: testNamespace('concurrency') }),
    async destroy(broker) {
      await broker.close();
      await deleteNamespace(broker.connection.namespace);
    },
  });
}
