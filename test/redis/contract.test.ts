import t from 'tap';
import {
  RedisBroker,
  RedisLockStore,
  RedisRateLimiter,
  RedisResultBackend,
  RedisRevokeStore,
  RedisScheduleStore,
} from '../../plugins/redis/index.js';
import {
  brokerContract,
  lockStoreContract,
  rateLimiterContract,
  resultBackendContract,
  revokeStoreContract,
  scheduleStoreContract,
  taskListingContract,
  type ContractFactory,
} from '../contract/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

interface Service {
  close(): Promise<void>;
  readonly connection: { readonly namespace: string };
}

/** Each implementation gets its own namespace, whose keys are deleted after the case. */
function factory<T extends Service>(
  label: string,
  connect: (url: string, options: { namespace: string }) => Promise<T>,
): ContractFactory<T> {
  return {
    name: 'redis',
    create: () => connect(REDIS_URL, { namespace: testNamespace(label) }),
    async destroy(impl) {
      await impl.close();
      await deleteNamespace(impl.connection.namespace);
    },
  };
}

if (await requireRedis(t)) {
  await brokerContract(
    t,
    factory('broker', (url, options) => RedisBroker.connect(url, options)),
  );
  await resultBackendContract(
    t,
    factory('backend', (url, options) => RedisResultBackend.connect(url, options)),
  );
  await taskListingContract(
    t,
    factory('listing', (url, options) => RedisResultBackend.connect(url, options)),
  );
  await revokeStoreContract(
    t,
    factory('revoke', (url, options) => RedisRevokeStore.connect(url, options)),
  );
  await rateLimiterContract(
    t,
    factory('rate', (url, options) => RedisRateLimiter.connect(url, options)),
  );
  await scheduleStoreContract(
    t,
    factory('schedule', (url, options) => RedisScheduleStore.connect(url, options)),
  );
  await lockStoreContract(
    t,
    factory('lock', (url, options) => RedisLockStore.connect(url, options)),
  );
}
