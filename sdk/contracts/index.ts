export type * from './broker.js';
export type * from './result-backend.js';
export type * from './revoke-store.js';
export type * from './rate-limiter.js';
export type * from './schedule-store.js';
export type * from './lock-store.js';
export type * from './concurrency-control.js';
export type * from './event-bus.js';
export type * from './workflow-store.js';
export { WORKFLOW_FINAL_STATUSES, isWorkflowFinal } from './workflow-store.js';
export { isTaskEvent, STEM_EVENT_TYPES } from './event-bus.js';
export { TERMINAL_STATES, isTerminal, stateWriteKey } from './result-backend.js';

import type { Broker } from './broker.js';
import type { ResultBackend } from './result-backend.js';
import type { RevokeStore } from './revoke-store.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ScheduleStore } from './schedule-store.js';
import type { LockStore } from './lock-store.js';
import type { EventBus } from './event-bus.js';
import type { WorkflowStore } from './workflow-store.js';

/** The services a plugin may provide, by name (the six core ones and the event bus). */
export interface Services {
  broker: Broker;
  backend: ResultBackend;
  revokeStore: RevokeStore;
  rateLimiter: RateLimiter;
  scheduleStore: ScheduleStore;
  lockStore: LockStore;
  /** The cross-process event stream (the broker plugins provide it; memory is in-process). */
  eventBus: EventBus;
  /** Durable workflow runs, checkpoints, waiters and buffered events (plugins/workflows). */
  workflowStore: WorkflowStore;
}

/** A service name: `broker`, `backend`, `revokeStore`, `rateLimiter`, `scheduleStore`, `lockStore`, `eventBus`. */
export type ServiceName = keyof Services;
