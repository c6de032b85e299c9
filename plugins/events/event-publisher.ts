import type { EventBus, StemEvent, TaskEvent, TaskEventType } from '../../sdk/contracts/event-bus.js';
import type { Envelope } from '../../sdk/envelope.js';
import { EVENT_MESSAGE_LIMIT } from '../../sdk/event-codec.js';
import type { Signals, SignalName, SignalPayloads } from '../../sdk/signals.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';

/**
 * How long events wait to be sent with the next ones: one publish per 50 ms at most (or per
 * `FLUSH_EVENTS` events) instead of one per event keeps the cost per task small (see docs/events.md).
 */
const FLUSH_INTERVAL_MS = 50;
/** A batch this large is sent at once. */
const FLUSH_EVENTS = 1_000;
/** Events held while the bus is slow; beyond that the oldest are dropped (events are for watching). */
const MAX_PENDING_EVENTS = 10_000;

/**
 * Turns the signals of the workers it is given into events and sends them through an event bus:
 * batched (one publish per 50 ms or per 1,000 events, however many tasks ended meanwhile) and sent one
 * batch at a time, so a publisher's events arrive in the order they happened. Listens to signals
 * only while a worker is attached, so a worker without events pays nothing.
 */
export class EventPublisher {
  private readonly workers = new Map<string, WorkerHandle>();
  private readonly stops: Array<() => void> = [];
  private pending: StemEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(
    private readonly signals: Signals,
    private readonly bus: () => EventBus,
  ) {}

  /** Publishes the events of `worker` from now on, starting with `worker-online`. */
  attach(worker: WorkerHandle): void {
    if (this.workers.size === 0) this.listen();
    this.workers.set(worker.id, worker);
    this.push({
      type: 'worker-online',
      at: Date.now(),
      workerId: worker.id,
      hostname: worker.hostname,
      queues: [...worker.queues],
      concurrency: worker.concurrency,
    });
  }

  /** Publishes `worker-offline` for `worker`, sends what is pending and stops publishing its events. */
  async detach(worker: WorkerHandle): Promise<void> {
    if (!this.workers.has(worker.id)) return;
    this.push({ type: 'worker-offline', at: Date.now(), workerId: worker.id, hostname: worker.hostname });
    this.workers.delete(worker.id);
    if (this.workers.size === 0) this.unlisten();
    await this.flush();
  }

  /** Sends every pending event now; resolves once they were handed to the bus. */
  async flush(): Promise<void> {
    this.send();
    await this.sending;
  }

  private listen(): void {
    // One object literal per event (no spreads): this runs three or four times per task.
    const task = (type: TaskEventType, envelope: Envelope, workerId: string): TaskEvent | undefined => {
      const worker = this.workers.get(workerId);
      if (worker === undefined) return undefined;
      return {
        type,
        at: Date.now(),
        workerId,
        hostname: worker.hostname,
        taskId: envelope.id,
        name: envelope.name,
        queue: envelope.queue,
        attempt: envelope.attempt,
      };
    };
    const on = <N extends SignalName>(name: N, listener: (payload: SignalPayloads[N]) => void) =>
      this.stops.push(this.signals.on(name, listener));
    on('task-received', ({ envelope, workerId }) => {
      const event = task('task-received', envelope, workerId);
      if (event) this.push(event);
    });
    on('task-started', ({ envelope, workerId }) => {
      const event = task('task-started', envelope, workerId);
      if (event) this.push(event);
    });
    on('task-succeeded', ({ envelope, workerId, durationMs }) => {
      const event = task('task-succeeded', envelope, workerId);
      if (event === undefined) return;
      event.runtimeMs = durationMs;
      this.push(event);
    });
    on('task-retried', ({ envelope, workerId, error, delayMs }) => {
      const event = task('task-retried', envelope, workerId);
      if (event === undefined) return;
      event.error = shortError(error);
      event.retryDelayMs = delayMs;
      this.push(event);
    });
    on('task-failed', ({ envelope, workerId, error, reason, durationMs }) => {
      const failed = task('task-failed', envelope, workerId);
      const deadLettered = task('task-dead-lettered', envelope, workerId);
      if (failed === undefined || deadLettered === undefined) return;
      // Every terminal failure is dead-lettered: failed says it ended, dead-lettered where it went.
      failed.runtimeMs = durationMs;
      failed.error = deadLettered.error = shortError(error);
      failed.reason = deadLettered.reason = reason;
      this.push(failed);
      this.push(deadLettered);
    });
    on('task-cancelled', ({ envelope, workerId, reason }) => {
      const event = task('task-cancelled', envelope, workerId);
      if (event === undefined) return;
      event.reason = cut(reason);
      this.push(event);
    });
    on('task-revoked', ({ taskId, workerId, terminate, envelope }) => {
      const worker = this.workers.get(workerId);
      if (worker === undefined) return;
      const event: TaskEvent = envelope
        ? task('task-revoked', envelope, workerId)!
        : { type: 'task-revoked', at: Date.now(), workerId, hostname: worker.hostname, taskId };
      event.terminate = terminate;
      this.push(event);
    });
    on('worker-heartbeat', ({ workerId, stats }) => {
      const worker = this.workers.get(workerId);
      if (worker === undefined) return;
      this.push({ type: 'worker-heartbeat', at: Date.now(), workerId, hostname: worker.hostname, concurrency: worker.concurrency, stats });
    });
  }

  private unlisten(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  private push(event: StemEvent): void {
    this.pending.push(event);
    if (this.pending.length > MAX_PENDING_EVENTS) this.pending.shift();
    if (this.pending.length >= FLUSH_EVENTS) this.send();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.send(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Chains the pending batch after the one being sent. */
  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.sending = this.sending.then(() =>
      this.bus()
        .publish(batch)
        .then(
          () => {
            this.failing = false;
          },
          (error: unknown) => {
            // Said once per outage, not once per batch: the worker goes on without its events.
            if (!this.failing)
              process.emitWarning(
                `events could not be published (${(error as Error)?.message ?? String(error)}); they are dropped until the event ` +
                  `bus answers again`,
                'StemEventWarning',
              );
            this.failing = true;
          },
        ),
    );
  }
}

function cut(text: string): string {
  return text.length > EVENT_MESSAGE_LIMIT ? `${text.slice(0, EVENT_MESSAGE_LIMIT - 1)}…` : text;
}

function shortError(error: { type: string; message: string }): { type: string; message: string } {
  return { type: error.type, message: cut(error.message ?? '') };
}
