/**
 * Stem: a distributed task queue for Node.js. The kernel: tasks, the producer, the worker, the
 * hooks plugins tap, the service contracts and their in-memory defaults.
 */
export { Stem } from './kernel.js';
export { DEFAULT_MAX_ARGS_BYTES, DEFAULT_MAX_REDELIVERIES, DEFAULT_NAMESPACE, type StemSettings } from './settings.js';
export { defineConfig, type StemConfig } from './config.js';
/** For plugin authors: refuse option keys a factory does not know, with a did-you-mean (see docs/writing-a-broker-plugin.md). */
export { assertKnownOptions, type OptionKeys } from './option-keys.js';
export {
  defineTask,
  isTaskDefinition,
  type TaskDefinition,
  type TaskOptions,
  type TaskContext,
  type TaskHandler,
  type EnqueueOptions,
} from './task.js';
export { TaskRegistry } from './registry.js';
export { TaskHandle, pendingStatus, waitForTerminalStatus, resultOf } from './task-handle.js';
export { Producer, type EnqueueManyOptions, type EnqueueRequest } from './producer.js';
export { Worker } from './worker.js';
export type { WorkerHandle, WorkerState, WorkerStats, ReservedTask, ActiveTask, RunningKey } from './worker-handle.js';
export type { WorkerOptions, WorkerInfo } from './worker-options.js';
export { StemHooks, type Verdict, type Runner, type Outcome, type Firing, type EnqueueShortCircuit, type ControlCommand } from './hooks.js';
export type { StemPlugin } from './plugin.js';
export { Signals, type SignalName, type SignalPayloads } from './signals.js';
export { installShutdownHandlers } from './shutdown.js';
export { decideRetry, backoffDelay, type RetryPolicy, type RetryDecision, type ErrorMatcher } from './retry-policy.js';
export { toTaskError } from './task-error.js';
export {
  supersedes,
  statePosition,
  generationOf,
  startedOver,
  nextGeneration,
  GENERATION_META,
  STATE_PHASE,
  FINAL_PHASE,
  type StatePosition,
} from './state-order.js';
export { parseDuration, resolveWhen, formatDuration, type Duration, type When } from './duration.js';
export { CONCURRENCY_HEADERS, taskConcurrencyKey, parseConcurrencyLimit } from './concurrency-key.js';
export {
  QUEUE_BOUND_HEADERS,
  OVERFLOW_POLICIES,
  QUEUE_FULL_DROPPED_REASON,
  checkQueueBound,
  stampQueueBound,
  queueBoundOf,
  assertBoundedQueuesSupported,
  type OverflowPolicy,
  type QueueBound,
} from './queue-bound.js';
export { uuidv7, uuidv7Time } from './id.js';
export {
  DEFAULT_LIST_LIMIT,
  MAX_LIST_LIMIT,
  LISTED_STATES,
  resolveTaskQuery,
  matchesTaskQuery,
  newestFirst,
  isAfter,
  pageOf,
  encodeListCursor,
  decodeListCursor,
  type ListPosition,
  type ResolvedTaskQuery,
} from './task-listing.js';
export { retryTask, type RetryHost } from './task-retry.js';
export {
  type Envelope,
  type JsonValue,
  META,
  BROADCAST_PREFIX,
  LINKS_HEADER,
  isBroadcastAddress,
  broadcastChannel,
  broadcastAddress,
  encodeEnvelope,
  decodeEnvelope,
  checkEnvelope,
  assertJsonSerialisable,
} from './envelope.js';
export * from './errors.js';
export * from './contracts/index.js';
export * from './memory/index.js';
export { maskUrl, urlScheme } from './url.js';
export { TaskWatchers, type TaskStatusListener } from './task-watchers.js';
export { EventStream, EVENT_ITERATOR_BUFFER, matchesEventFilter, type EventFilter, type EventIterator } from './event-stream.js';
export { encodeEventBatches, decodeEventBatch, EVENT_MESSAGE_LIMIT } from './event-codec.js';
