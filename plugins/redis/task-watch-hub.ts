import type { Redis } from 'ioredis';
import type { TaskStatus, Unsubscribe } from '../../sdk/contracts/index.js';
import type { RedisConnection } from './redis-connection.js';

type Listener = (status: TaskStatus) => void;

/**
 * Fans task-state messages out to watchers over one subscriber connection per backend: a channel
 * per task id, subscribed while at least one listener watches it (no keyspace notifications needed).
 */
export class TaskWatchHub {
  private subscriber: Promise<Redis> | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly connection: RedisConnection) {}

  /** Calls `listener` with every status published on `channel` until the returned function is called. */
  async watch(channel: string, listener: Listener): Promise<Unsubscribe> {
    const subscriber = await this.open();
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      await subscriber.subscribe(channel);
    }
    set.add(listener);
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      const current = this.listeners.get(channel);
      if (current === undefined) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(channel);
        await subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  /** Drops every listener and the subscriber connection. */
  close(): void {
    this.listeners.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    void subscriber?.then((client) => this.connection.closeDuplicate(client), () => undefined);
  }

  private open(): Promise<Redis> {
    this.subscriber ??= this.connection.duplicate('watch').then((client) => {
      client.on('message', (channel: string, message: string) => this.dispatch(channel, message));
      return client;
    });
    return this.subscriber;
  }

  private dispatch(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (set === undefined) return;
    const status = JSON.parse(message) as TaskStatus;
    for (const listener of [...set]) {
      try {
        listener(status);
      } catch {
        // a throwing listener must not keep the others from hearing the update
      }
    }
  }
}
