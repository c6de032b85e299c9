import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncWaterfallHook } from 'tapable';
import type { Delivery } from './contracts/broker.js';
import type { TaskError } from './contracts/result-backend.js';
import type { Envelope } from './envelope.js';
import type { EnqueueOptions, TaskContext } from './task.js';
import type { WorkerHandle } from './worker-handle.js';
import type { WorkerOptions } from './worker-options.js';

/** The dispatch phase's answer for one delivery. `undefined` from a tap means "no opinion". */
export type Verdict =
  | { action: 'run' }
  | { action: 'defer'; delayMs: number; reason?: string }
  | { action: 'cancel'; reason: string }
  | { action: 'reject'; reason: string; meta?: Record<string, unknown> };

/** Runs a task: the innermost runner calls the handler; execute taps wrap it. */
export type Runner = (ctx: TaskContext) => Promise<unknown>;

/** How an attempt ended, as the result phase sees it. */
export interface Outcome {
  /** The envelope that ran. */
  envelope: Envelope;
  /** The delivery it came in. */
  delivery: Delivery;
  /** The worker that ran it. */
  worker: WorkerHandle;
  /** succeeded, failed (terminal), retried (another attempt is queued), cancelled. */
  state: 'succeeded' | 'failed' | 'retried' | 'cancelled';
  /** The handler's return value, when succeeded. */
  result?: unknown;
  /** The failure or cancel reason. */
  error?: TaskError;
  /** With failed: the dead-letter reason. With retried: undefined. */
  reason?: string;
  /** With retried: the delay before the next attempt. */
  retryDelayMs?: number;
  /** Epoch ms the handler started. */
  startedAt: number;
  /** How long the handler ran. */
  durationMs: number;
}

/**
 * An `enqueueShortCircuit` tap's answer: publish nothing for this envelope and hand the caller the
 * existing task `id` instead (a duplicate of a unique task, an idempotent re-enqueue).
 */
export interface EnqueueShortCircuit {
  /** The id of the task the caller gets instead of a new one. */
  id: string;
  /** Merged into the returned handle's envelope meta, to say why (e.g. `{ 'unique.duplicateOf': id }`). */
  meta?: Record<string, unknown>;
}

/** A remote-control command as a worker receives it (transported by plugins/control). */
export interface ControlCommand {
  /** The command, e.g. `ping`, `revoke`, `rate-limit`. */
  name: string;
  /** Its JSON arguments. */
  args: Record<string, unknown>;
  /** The id of the request, shared by every worker's reply. */
  requestId: string;
}

/** A due schedule entry about to be enqueued by Beat. Set `skip` to drop this firing. */
export interface Firing {
  /** The schedule entry id. */
  scheduleId: string;
  /** The task to enqueue. */
  task: string;
  /** Its arguments. */
  args: unknown;
  /** Enqueue options (queue, priority, headers with stem-schedule-id and stem-scheduled-for). */
  options: EnqueueOptions;
  /** Epoch ms the firing was due. */
  scheduledFor: number;
  /** When true, the firing is not enqueued (a tap decided so). */
  skip?: boolean;
}

/**
 * Every point where a plugin can change Stem's behaviour, one group per phase. Hooks with no taps
 * cost nothing: the kernel checks `isUsed()` before calling them on hot paths.
 */
export class StemHooks {
  // enqueue phase (producer)
  /** Each envelope before it is published: route, clamp, sign, inject trace context, or throw to refuse. */
  readonly enqueue = new AsyncSeriesWaterfallHook<[Envelope]>(['envelope']);
  /** After the enqueue hook: return an existing task to publish nothing and hand that task back instead. */
  readonly enqueueShortCircuit = new AsyncSeriesBailHook<[Envelope], EnqueueShortCircuit | undefined>(['envelope']);
  /** After a batch was published. */
  readonly published = new AsyncSeriesHook<[readonly Envelope[]]>(['envelopes']);
  /**
   * Envelopes that went through the enqueue hook but were not published: a short-circuit answered
   * for them (error undefined) or the publish failed (the error). Ends what `enqueue` taps began.
   */
  readonly notPublished = new AsyncSeriesHook<[readonly Envelope[], unknown]>(['envelopes', 'error']);

  // dispatch phase (worker, before run)
  /** A delivery arrived: return a Verdict to defer, cancel or reject it; undefined to let it run. */
  readonly dispatch = new AsyncSeriesBailHook<[Delivery, WorkerHandle], Verdict | undefined>(['delivery', 'worker']);

  // execute phase (worker, around the handler)
  /** Wraps the runner: return a new runner that calls the given one (middleware). */
  readonly execute = new SyncWaterfallHook<[Runner, TaskContext]>(['runner', 'context']);

  // result phase (worker, after the handler settled)
  /** An attempt ended: chain the next step, count a chord member, emit metrics. */
  readonly result = new AsyncSeriesHook<[Outcome]>(['outcome']);

  // schedule phase (Beat)
  /** A schedule entry is due: adjust the firing or set `skip`. */
  readonly schedule = new AsyncSeriesWaterfallHook<[Firing]>(['firing']);

  // instance lifecycle
  /** Every plugin has been applied and every service provided: start background work here. */
  readonly ready = new AsyncSeriesHook<[]>([]);

  // worker lifecycle
  /** A worker is being created: adjust its options (routing adds broadcast subscriptions). */
  readonly workerOptions = new SyncWaterfallHook<[WorkerOptions]>(['options']);
  /** A worker started consuming. */
  readonly workerStart = new AsyncSeriesHook<[WorkerHandle]>(['worker']);
  /** A worker stopped. */
  readonly workerStop = new AsyncSeriesHook<[WorkerHandle]>(['worker']);
  /** A remote-control command reached a worker: return its JSON reply, or undefined when it is not yours. */
  readonly control = new AsyncSeriesBailHook<[ControlCommand, WorkerHandle], unknown>(['command', 'worker']);
}
