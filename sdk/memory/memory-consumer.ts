import type { BrokerConsumer, Delivery } from '../contracts/broker.js';
import { ClosedError } from '../errors.js';
import type { MessageQueue } from './message-queue.js';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** A consumer of the memory broker: reads its queues and its broadcast subscriptions. */
export class MemoryConsumer implements BrokerConsumer {
  private closed = false;

  /**
   * @param sources the queues it reads, its own broadcast copies included
   * @param onClose gives its subscriptions back to the broker
   */
  constructor(
    private readonly sources: readonly MessageQueue[],
    private readonly onClose: (consumer: MemoryConsumer) => void,
  ) {}

  /** Waits for deliveries (woken by a publish, a due time, a lease running out or the signal). */
  async fetch(max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new ClosedError('memory broker consumer');
    if (!(max >= 1)) return [];
    for (;;) {
      if (signal.aborted || this.closed) return [];
      const now = Date.now();
      for (const source of this.sources) source.settle(now);
      const batch = this.take(Math.floor(max), now);
      if (batch.length > 0) return batch;
      await this.waitForChange(signal);
    }
  }

  /** Stops reading and gives up the broadcast subscriptions; a waiting fetch returns []. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown();
    this.onClose(this);
  }

  /** Marks it closed and wakes a waiting fetch, without telling the broker (which is closing). */
  shutdown(): void {
    this.closed = true;
    for (const source of this.sources) source.wake();
  }

  private take(max: number, now: number): Delivery[] {
    const batch: Delivery[] = [];
    while (batch.length < max) {
      let best: MessageQueue | undefined;
      let bestPriority = -1;
      let bestSeq = Infinity;
      for (const source of this.sources) {
        const head = source.peekReady();
        if (head === undefined) continue;
        if (head.priority > bestPriority || (head.priority === bestPriority && head.seq < bestSeq)) {
          best = source;
          bestPriority = head.priority;
          bestSeq = head.seq;
        }
      }
      const delivery = best?.lease(now);
      if (delivery === undefined) break;
      batch.push(delivery);
    }
    return batch;
  }

  /** One timer at most, for the soonest due time or lease expiry of all its queues. */
  private waitForChange(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', done);
        for (const source of this.sources) source.removeWaiter(done);
        resolve();
      };
      let wakeAt = Infinity;
      for (const source of this.sources) {
        source.addWaiter(done);
        wakeAt = Math.min(wakeAt, source.nextChangeAt());
      }
      signal.addEventListener('abort', done, { once: true });
      if (wakeAt !== Infinity) timer = setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, wakeAt - Date.now())));
    });
  }
}
