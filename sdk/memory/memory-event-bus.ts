import type { EventBus, StemEvent, StemEventListener } from '../contracts/event-bus.js';
import { ClosedError } from '../errors.js';

/**
 * The in-process event bus: the kernel's default when no plugin provides one. Events reach the
 * subscribers of this process only, each on a later microtask, in the order they were published.
 */
export class MemoryEventBus implements EventBus {
  private readonly listeners = new Set<StemEventListener>();
  private closed = false;

  /** Hands each event to every current subscriber. */
  async publish(events: readonly StemEvent[]): Promise<void> {
    if (this.closed) throw new ClosedError('memory event bus');
    if (this.listeners.size === 0 || events.length === 0) return;
    const listeners = [...this.listeners];
    queueMicrotask(() => {
      for (const event of events) {
        for (const listener of listeners) {
          try {
            listener(event);
          } catch (error) {
            process.emitWarning(`an event listener threw: ${(error as Error)?.message ?? String(error)}`, 'StemEventWarning');
          }
        }
      }
    });
  }

  /** Listens from now on. */
  async subscribe(listener: StemEventListener): Promise<() => Promise<void>> {
    if (this.closed) throw new ClosedError('memory event bus');
    const own = (event: StemEvent) => listener(event);
    this.listeners.add(own);
    return async () => {
      this.listeners.delete(own);
    };
  }

  /** Drops every subscriber. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }
}
