export type * from './broker.js';
export type * from './result-backend.js';
export type * from './revoke-store.js';
export type * from './rate-limiter.js';
export type * from './schedule-store.js';
export type * from './lock-store.js';
export type * from './concurrency-control.js';
export { TERMINAL_STATES, isTerminal, stateWriteKey } from './result-backend.js';

import type { Broker } from './broker.js';
import type { ResultBackend } from './result-backend.js';
import type { RevokeStore } from './revoke-store.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ScheduleStore } from './schedule-store.js';
import type { LockStore } from './lock-store.js';

/** The six services a plugin may provide, by name. */
export interface Services {
  broker: Broker;
  backend: ResultBackend;
  revokeStore: RevokeStore;
  rateLimiter: RateLimiter;
  scheduleStore: ScheduleStore;
  lockStore: LockStore;
}

/** A service name: `broker`, `backend`, `revokeStore`, `rateLimiter`, `scheduleStore`, `lockStore`. */
export type ServiceName = keyof Services;
