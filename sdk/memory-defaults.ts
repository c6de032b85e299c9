import type { ServiceName, Services } from './contracts/index.js';
import { MemoryBroker, MemoryLockStore, MemoryRateLimiter, MemoryResultBackend, MemoryRevokeStore, MemoryScheduleStore } from './memory/index.js';

/** Creates the in-memory implementation of one service: the default when no plugin provides it. */
export function createMemoryService<K extends ServiceName>(name: K, options: { resultTtlMs: number }): Services[K] {
  const factories: { [N in ServiceName]: () => Services[N] } = {
    broker: () => new MemoryBroker(),
    backend: () => new MemoryResultBackend({ defaultTtlMs: options.resultTtlMs }),
    revokeStore: () => new MemoryRevokeStore(),
    rateLimiter: () => new MemoryRateLimiter(),
    scheduleStore: () => new MemoryScheduleStore(),
    lockStore: () => new MemoryLockStore(),
  };
  return factories[name]();
}
