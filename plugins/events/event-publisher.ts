import type { EventBus, StemEvent, TaskEvent } from '../../sdk/contracts/event-bus.js';
import type { Envelope } from '../../sdk/envelope.js';
import { EVENT_MESSAGE_LIMIT } from '../../sdk/event-codec.js';
import type { Signals, SignalName, SignalPayloads } from '../../sdk/signals.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';

/** Events held while the bus is slow; beyond that the oldest are dropped (events are for watching). */
const MAX_PENDING_EVENTS = 10_000;

/**
 * Turns the signals of the workers it is given into events and sends them through an event bus:
 * batched per event-loop turn (one publish per turn, however many tasks ended in it) and sent one
 * batch at a time, so a publisher's events arrive in the order they happened. Listens to signals
 * only while a worker is attached, so a worker without events pays nothing.
 */
export class EventPublisher {
  private readonly workers = new Map<string, WorkerHandle>();
  private readonly stops: Array<() => void> = [];
  private pending: StemEvent[] = [];
  private scheduled = false;
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
    const task = (envelope: Envelope, workerId: string): Omit<TaskEvent, 'type'> | undefined => {
      const worker = this.workers.get(workerId);
      if (worker === undefined) return undefined;
      return {
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
      const base = task(envelope, workerId);
      if (base) this.push({ type: 'task-received', ...base });
    });
    on('task-started', ({ envelope, workerId }) => {
      const base = task(envelope, workerId);
      if (base) this.push({ type: 'task-started', ...base });
    });
    on('task-succeeded', ({ envelope, workerId, durationMs }) => {
      const base = task(envelope, workerId);
      if (base) this.push({ type: 'task-succeeded', ...base, runtimeMs: durationMs });
    });
    on('task-retried', ({ envelope, workerId, error, delayMs }) => {
      const base = task(envelope, workerId);
      if (base) this.push({ type: 'task-retried', ...base, error: shortError(error), retryDelayMs: delayMs });
    });
    on('task-failed', ({ envelope, workerId, error, reason, durationMs }) => {
      const base = task(envelope, workerId);
      if (base === undefined) return;
      // Every terminal failure is dead-lettered: failed says it ended, dead-lettered where it went.
      this.push({ type: 'task-failed', ...base, runtimeMs: durationMs, error: shortError(error), reason });
      this.push({ type: 'task-dead-lettered', ...base, error: shortError(error), reason });
    });
    on('task-cancelled', ({ envelope, workerId, reason }) => {
      const base = task(envelope, workerId);
      if (base) this.push({ type: 'task-cancelled', ...base, reason: cut(reason) });
    });
    on('task-revoked', ({ taskId, workerId, terminate, envelope }) => {
      const worker = this.workers.get(workerId);
      if (worker === undefined) return;
      const base = envelope ? task(envelope, workerId)! : { at: Date.now(), workerId, hostname: worker.hostname, taskId };
      this.push({ type: 'task-revoked', ...base, terminate });
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
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.send());
    }
  }

  /** Chains the pending batch after the one being sent. */
  private send(): void {
    this.scheduled = false;
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
                `events could not be published (${(error as Error)?.message ?? String(error)}); they are dropped until the event bus answers again`,
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
