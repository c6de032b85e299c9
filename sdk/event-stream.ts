import type { EventBus, StemEvent, StemEventListener, StemEventOf, StemEventType } from './contracts/event-bus.js';

/** Which events a subscription keeps. */
export interface EventFilter {
  /** Only these types (default: every type). */
  types?: readonly StemEventType[];
  /** Only task events of this task name (worker events are dropped). */
  task?: string;
}

/** An async iterator over events, subscribed from the moment it was made. */
export interface EventIterator extends AsyncIterableIterator<StemEvent> {
  /** Resolves once the subscription listens: events published after that are delivered. */
  readonly ready: Promise<void>;
  /** Events dropped because the consumer fell more than `EVENT_ITERATOR_BUFFER` events behind. */
  readonly dropped: number;
}

/** How many unread events an iterator holds before it drops the oldest. */
export const EVENT_ITERATOR_BUFFER = 10_000;

/** True when `event` passes `filter`. */
export function matchesEventFilter(event: StemEvent, filter: EventFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  if (filter.task !== undefined && (!('name' in event) || event.name !== filter.task)) return false;
  return true;
}

/**
 * `stem.events`: the events workers publish (with `events: true`) through the event bus service,
 * as listeners (`on`) or async iterators (`for await (const event of stem.events)`). Nothing is
 * subscribed until one of them is used; `close()` (called by `stem.close()`) ends them all.
 */
export class EventStream implements AsyncIterable<StemEvent> {
  private readonly active = new Set<() => Promise<void>>();
  private closed = false;

  /** `bus` is read on first use, so a plugin provided later is the one used. */
  constructor(private readonly bus: () => EventBus) {}

  /**
   * Calls `listener` with each event of `type` (or of every type with `'*'`); subscribes in the
   * background (a failure is a process warning). Returns a function that stops it.
   */
  on<T extends StemEventType>(type: T | '*', listener: (event: StemEventOf<T>) => void): () => void {
    const subscribing = this.subscribe(listener as StemEventListener, type === '*' ? undefined : { types: [type] });
    subscribing.catch((error: unknown) =>
      process.emitWarning(
        `stem.events.on("${type}") could not subscribe: ${(error as Error)?.message ?? String(error)}`,
        'StemEventWarning',
      ),
    );
    return () => {
      void subscribing.then((stop) => stop()).catch(() => undefined);
    };
  }

  /** Calls `listener` with each event that passes `filter`; resolves once listening, with a function that stops it. */
  async subscribe(listener: StemEventListener, filter?: EventFilter): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('stem.events is closed with its Stem instance');
    const unsubscribe = await this.bus().subscribe((event) => {
      if (matchesEventFilter(event, filter)) listener(event);
    });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      this.active.delete(stop);
      await unsubscribe();
    };
    if (this.closed) {
      await stop();
      throw new Error('stem.events is closed with its Stem instance');
    }
    this.active.add(stop);
    return stop;
  }

  /** An async iterator of the events that pass `filter`, subscribed now: `await it.ready` before acting. */
  iterate(filter?: EventFilter): EventIterator {
    const buffer: StemEvent[] = [];
    let waiting: ((result: IteratorResult<StemEvent>) => void) | undefined;
    let done = false;
    let dropped = 0;
    let failure: unknown;
    let stop: (() => Promise<void>) | undefined;
    const finish = (): void => {
      done = true;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value: undefined, done: true });
      }
    };
    const ready = this.subscribe((event) => {
      if (done) return;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value: event, done: false });
        return;
      }
      buffer.push(event);
      if (buffer.length > EVENT_ITERATOR_BUFFER) {
        buffer.shift();
        dropped++;
      }
    }, filter).then(
      (unsubscribe) => {
        const own = async () => {
          finish();
          await unsubscribe();
        };
        // Ended with the stream: the kernel's close stops `unsubscribe`, which must end this iterator too.
        this.active.delete(unsubscribe);
        this.active.add(own);
        stop = async () => {
          this.active.delete(own);
          await own();
        };
        if (done) return stop();
      },
      (error: unknown) => {
        failure = error;
        finish();
      },
    );
    const iterator: EventIterator = {
      ready: ready.then(() => {
        if (failure !== undefined) throw failure;
      }),
      get dropped() {
        return dropped;
      },
      next: async () => {
        if (buffer.length > 0) return { value: buffer.shift()!, done: false };
        if (failure !== undefined) throw failure;
        if (done) return { value: undefined, done: true };
        return new Promise<IteratorResult<StemEvent>>((resolve) => {
          waiting = resolve;
        });
      },
      return: async () => {
        finish();
        buffer.length = 0;
        await ready;
        await stop?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    iterator.ready.catch(() => undefined);
    return iterator;
  }

  /** `for await (const event of stem.events)`: every event, from the first `next()` on. */
  [Symbol.asyncIterator](): EventIterator {
    return this.iterate();
  }

  /** Stops every listener and ends every iterator. */
  async close(): Promise<void> {
    this.closed = true;
    const stopping = [...this.active];
    this.active.clear();
    await Promise.all(stopping.map((stop) => stop().catch(() => undefined)));
  }
}
