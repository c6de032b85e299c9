import type { ServiceName, Services } from '../contracts/index.js';
import { MemoryBroker } from './memory-broker.js';
import { MemoryEventBus } from './memory-event-bus.js';
import { MemoryLockStore } from './memory-lock-store.js';
import { MemoryRateLimiter } from './memory-rate-limiter.js';
import { MemoryResultBackend } from './memory-result-backend.js';
import { MemoryRevokeStore } from './memory-revoke-store.js';
import { MemoryScheduleStore } from './memory-schedule-store.js';
import { MemoryWorkflowStore } from './memory-workflow-store.js';

export { MemoryBroker } from './memory-broker.js';
export { MemoryResultBackend, type MemoryResultBackendOptions } from './memory-result-backend.js';
export { MemoryRevokeStore } from './memory-revoke-store.js';
export { MemoryRateLimiter } from './memory-rate-limiter.js';
export { MemoryScheduleStore } from './memory-schedule-store.js';
export { MemoryLockStore } from './memory-lock-store.js';
export { MemoryEventBus } from './memory-event-bus.js';
export { MemoryWorkflowStore } from './memory-workflow-store.js';

/** Creates the in-memory implementation of one service: the kernel's default when no plugin provides it. */
export function createMemoryService<K extends ServiceName>(name: K, options: { resultTtlMs?: number } = {}): Services[K] {
  const factories: { [N in ServiceName]: () => Services[N] } = {
    broker: () => new MemoryBroker(),
    backend: () => new MemoryResultBackend({ defaultTtlMs: options.resultTtlMs }),
    revokeStore: () => new MemoryRevokeStore(),
    rateLimiter: () => new MemoryRateLimiter(),
    scheduleStore: () => new MemoryScheduleStore(),
    lockStore: () => new MemoryLockStore(),
    eventBus: () => new MemoryEventBus(),
    workflowStore: () => new MemoryWorkflowStore(),
  };
  return factories[name]();
}
