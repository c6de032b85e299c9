import type { StemEvent, TaskEvent } from '../../sdk/contracts/event-bus.js';
import { isTaskEvent } from '../../sdk/contracts/event-bus.js';
import type { Stem } from '../../sdk/kernel.js';

/** How many tasks keep a timeline (the oldest is forgotten first). */
const TIMELINE_TASKS = 5_000;
/** How many events one task's timeline keeps. */
const TIMELINE_EVENTS = 50;
/** The events a new page gets at once, so its live table is not empty. */
const RECENT_EVENTS = 200;

/** Task events that end what a worker runs for an attempt. */
const ENDS_RUN: ReadonlySet<string> = new Set(['task-succeeded', 'task-failed', 'task-retried', 'task-cancelled', 'task-revoked']);

/** The window task rates are counted over. */
const RATE_WINDOW_MS = 60_000;

/** Receives each event the hub fans out. */
export type HubListener = (event: StemEvent) => void;

/**
 * The dashboard's one subscription to `stem.events`, shared by every open page: fans events out
 * to server-sent-event streams, and keeps what the pages cannot get from the stores: each task's
 * timeline and the tasks each worker runs now, as seen since the dashboard started listening.
 */
export class EventHub {
  private readonly listeners = new Set<HubListener>();
  private readonly timelines = new Map<string, TaskEvent[]>();
  private readonly recent: StemEvent[] = [];
  private readonly runningByWorker = new Map<string, Map<string, { name?: string; since: number }>>();
  /** Per queue: when its tasks finished (succeeded or failed) within the rate window, oldest first. */
  private readonly finishedByQueue = new Map<string, Array<{ at: number; failed: boolean }>>();
  private stop: (() => Promise<void>) | undefined;
  private starting: Promise<void> | undefined;
  private failure: string | undefined;
  /** Events received since it started listening. */
  received = 0;

  constructor(private readonly stem: Stem) {}

  /** Subscribes once (later calls share the first); a failure is kept and reported by `status`. */
  start(): Promise<void> {
    this.starting ??= this.stem.events
      .subscribe((event) => this.receive(event))
      .then(
        (stop) => {
          this.stop = stop;
        },
        (error: unknown) => {
          this.failure = (error as Error)?.message ?? String(error);
        },
      );
    return this.starting;
  }

  /** Whether it listens, and why not. */
  status(): { listening: boolean; error?: string; received: number } {
    return this.failure === undefined
      ? { listening: this.stop !== undefined, received: this.received }
      : { listening: false, error: this.failure, received: this.received };
  }

  /** Calls `listener` with each later event; returns a function that stops it. */
  listen(listener: HubListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last events received, oldest first. */
  recentEvents(): readonly StemEvent[] {
    return this.recent;
  }

  /** The events seen for a task, oldest first (empty when none were seen). */
  timeline(taskId: string): readonly TaskEvent[] {
    return this.timelines.get(taskId) ?? [];
  }

  /** The tasks a worker was seen starting and not yet ending. */
  runningOn(workerId: string): Array<{ taskId: string; name?: string; since: number }> {
    return [...(this.runningByWorker.get(workerId) ?? new Map()).entries()].map(([taskId, run]) => ({ taskId, ...run }));
  }

  /** Per queue: tasks that succeeded and failed in the last minute, as seen in events. */
  ratesPerMinute(now = Date.now()): Record<string, { succeeded: number; failed: number }> {
    const rates: Record<string, { succeeded: number; failed: number }> = {};
    for (const [queue, finished] of this.finishedByQueue) {
      while (finished.length > 0 && finished[0]!.at < now - RATE_WINDOW_MS) finished.shift();
      if (finished.length === 0) {
        this.finishedByQueue.delete(queue);
        continue;
      }
      const failed = finished.filter((one) => one.failed).length;
      rates[queue] = { succeeded: finished.length - failed, failed };
    }
    return rates;
  }

  /** Unsubscribes and drops every listener. */
  async close(): Promise<void> {
    this.listeners.clear();
    await this.starting;
    await this.stop?.().catch(() => undefined);
    this.stop = undefined;
  }

  private receive(event: StemEvent): void {
    this.received++;
    this.recent.push(event);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
    if (isTaskEvent(event)) this.track(event);
    else if (event.type === 'worker-offline') this.runningByWorker.delete(event.workerId);
    for (const listener of this.listeners) listener(event);
  }

  private track(event: TaskEvent): void {
    let timeline = this.timelines.get(event.taskId);
    if (timeline === undefined) {
      timeline = [];
      this.timelines.set(event.taskId, timeline);
      if (this.timelines.size > TIMELINE_TASKS) this.timelines.delete(this.timelines.keys().next().value!);
    }
    timeline.push(event);
    if (timeline.length > TIMELINE_EVENTS) timeline.shift();
    if (event.type === 'task-started') {
      let running = this.runningByWorker.get(event.workerId);
      if (running === undefined) this.runningByWorker.set(event.workerId, (running = new Map()));
      running.set(event.taskId, { ...(event.name === undefined ? {} : { name: event.name }), since: event.at });
    } else if (ENDS_RUN.has(event.type)) {
      this.runningByWorker.get(event.workerId)?.delete(event.taskId);
    }
    if ((event.type === 'task-succeeded' || event.type === 'task-failed') && event.queue !== undefined) {
      let finished = this.finishedByQueue.get(event.queue);
      if (finished === undefined) this.finishedByQueue.set(event.queue, (finished = []));
      finished.push({ at: event.at, failed: event.type === 'task-failed' });
      // Bounded however busy: drop what fell out of the window.
      while (finished.length > 0 && finished[0]!.at < event.at - RATE_WINDOW_MS) finished.shift();
    }
  }
}
