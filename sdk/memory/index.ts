import type { Services } from '../contracts/index.js';
import { MemoryBroker } from './memory-broker.js';
import { MemoryLockStore } from './memory-lock-store.js';
import { MemoryRateLimiter } from './memory-rate-limiter.js';
import { MemoryResultBackend, type MemoryResultBackendOptions } from './memory-result-backend.js';
import { MemoryRevokeStore } from './memory-revoke-store.js';
import { MemoryScheduleStore } from './memory-schedule-store.js';

export { MemoryBroker } from './memory-broker.js';
export { MemoryResultBackend, type MemoryResultBackendOptions } from './memory-result-backend.js';
export { MemoryRevokeStore } from './memory-revoke-store.js';
export { MemoryRateLimiter } from './memory-rate-limiter.js';
export { MemoryScheduleStore } from './memory-schedule-store.js';
export { MemoryLockStore } from './memory-lock-store.js';

/** Options of {@link createMemoryServices}. */
export interface MemoryServicesOptions {
  /** Options of the result backend. */
  backend?: MemoryResultBackendOptions;
}

/** All six services in memory: the embedded default, with no server. */
export function createMemoryServices(options: MemoryServicesOptions = {}): Services {
  return {
    broker: new MemoryBroker(),
    backend: new MemoryResultBackend(options.backend),
    revokeStore: new MemoryRevokeStore(),
    rateLimiter: new MemoryRateLimiter(),
    scheduleStore: new MemoryScheduleStore(),
    lockStore: new MemoryLockStore(),
  };
}
