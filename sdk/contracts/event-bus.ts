/** The kinds of task event a worker publishes, one per step of an attempt. */
export type TaskEventType =
  | 'task-received'
  | 'task-started'
  | 'task-succeeded'
  | 'task-failed'
  | 'task-retried'
  | 'task-cancelled'
  | 'task-revoked'
  | 'task-dead-lettered';

/** The kinds of worker event: it started consuming, it is alive (each heartbeat), it stopped. */
export type WorkerEventType = 'worker-online' | 'worker-heartbeat' | 'worker-offline';

/** Every event type. */
export type StemEventType = TaskEventType | WorkerEventType;

/** Fields every event carries. */
interface EventBase {
  /** Epoch ms at which the worker published it. */
  at: number;
  /** The worker that published it. */
  workerId: string;
  /** The host that worker runs on. */
  hostname: string;
}

/**
 * One step of a task attempt, as a worker saw it. Kept small (no arguments or results; an error
 * message is cut to 500 characters) so that it fits a Postgres NOTIFY and costs little to send.
 */
export interface TaskEvent extends EventBase {
  type: TaskEventType;
  /** The task id. */
  taskId: string;
  /** The task name; absent only on a `task-revoked` for a task the worker had not fetched. */
  name?: string;
  /** The queue it came from. */
  queue?: string;
  /** Its attempt number (1 for the first run). */
  attempt?: number;
  /** How long the handler ran, on succeeded, failed and retried (and cancelled once started). */
  runtimeMs?: number;
  /** The error, on failed, retried and dead-lettered. */
  error?: { type: string; message: string };
  /** Why: the dead-letter reason on failed and dead-lettered, the cancel reason on cancelled. */
  reason?: string;
  /** On retried: the delay before the next attempt. */
  retryDelayMs?: number;
  /** On revoked: whether a running attempt was aborted. */
  terminate?: boolean;
}

/** A worker's lifecycle, and its counters on each heartbeat. */
export interface WorkerEvent extends EventBase {
  type: WorkerEventType;
  /** The queues it consumes (online). */
  queues?: readonly string[];
  /** Tasks it runs at once (online, heartbeat). */
  concurrency?: number;
  /** Its counters on heartbeat: processed, succeeded, failed, retried, inflight… */
  stats?: Record<string, number>;
}

/** An event of the stream: a {@link TaskEvent} or a {@link WorkerEvent}, told apart by `type`. */
export type StemEvent = TaskEvent | WorkerEvent;

/** The event of one type. */
export type StemEventOf<T extends StemEventType> = T extends TaskEventType ? TaskEvent & { type: T } : WorkerEvent & { type: T };

/** Receives every event a subscription delivers. */
export type StemEventListener = (event: StemEvent) => void;

/**
 * The cross-process event stream of a namespace, carried by the broker's own means (Redis pub/sub,
 * Postgres NOTIFY, in-process for memory). Delivery is at most once and only to subscribers
 * connected at the time: events are for watching work, never for correctness.
 */
export interface EventBus {
  /**
   * Sends `events` (in order) to every current subscriber of the namespace. Resolves once handed
   * to the server; events with no subscriber are dropped by the server at almost no cost.
   */
  publish(events: readonly StemEvent[]): Promise<void>;
  /**
   * Calls `listener` with each event published from now on, in the order each publisher sent
   * them. Resolves once listening; the returned function stops it.
   */
  subscribe(listener: StemEventListener): Promise<() => Promise<void>>;
  /** Releases the subscriber connection. */
  close(): Promise<void>;
}

/** True for the types of task events. */
export function isTaskEvent(event: StemEvent): event is TaskEvent {
  return event.type.startsWith('task-');
}

/** Every event type, task events first. */
export const STEM_EVENT_TYPES: readonly StemEventType[] = [
  'task-received',
  'task-started',
  'task-succeeded',
  'task-failed',
  'task-retried',
  'task-cancelled',
  'task-revoked',
  'task-dead-lettered',
  'worker-online',
  'worker-heartbeat',
  'worker-offline',
];
