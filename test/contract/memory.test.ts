import t from 'tap';
import {
  MemoryBroker,
  MemoryLockStore,
  MemoryRateLimiter,
  MemoryResultBackend,
  MemoryRevokeStore,
  MemoryScheduleStore,
} from '../../sdk/memory/index.js';
import {
  brokerContract,
  lockStoreContract,
  rateLimiterContract,
  resultBackendContract,
  revokeStoreContract,
  scheduleStoreContract,
  taskListingContract,
} from './index.js';

await brokerContract(t, { name: 'memory', create: async () => new MemoryBroker() });
await resultBackendContract(t, { name: 'memory', create: async () => new MemoryResultBackend() });
await taskListingContract(t, { name: 'memory', create: async () => new MemoryResultBackend() });
await revokeStoreContract(t, { name: 'memory', create: async () => new MemoryRevokeStore() });
await rateLimiterContract(t, { name: 'memory', create: async () => new MemoryRateLimiter() });
await scheduleStoreContract(t, { name: 'memory', create: async () => new MemoryScheduleStore() });
await lockStoreContract(t, { name: 'memory', create: async () => new MemoryLockStore() });
