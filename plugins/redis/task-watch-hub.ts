import { Redis } from 'ioredis';
import type { TaskStatus, Unsubscribe } from '../../sdk/contracts/index.js';
import type { RedisClient, RedisConnection } from './redis-connection.js';

type Listener = (status: TaskStatus) => void;

/** What ioredis or a RESP2 server answers a GET on a subscribed connection. */
const SUBSCRIBED_ONLY = /subscriber mode|allowed in this context/;

/**
 * Fans task-state messages out to watchers over one subscriber connection per backend: a channel
 * per task id, subscribed while at least one listener watches it (no keyspace notifications needed).
 */
export class TaskWatchHub {
  private subscriber: Promise<RedisClient> | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly connection: RedisConnection) {}

  /** Calls `listener` with every status published on `channel` until the returned function is called. */
  async watch(channel: string, listener: Listener): Promise<Unsubscribe> {
    return (await this.watchAndRead(channel, listener)).unsubscribe;
  }

  /**
   * `watch`, and reads `key` once the subscription is active. On RESP3 (Redis 6+) the GET goes
   * with the SUBSCRIBE on the subscriber connection, served after it: one round trip. On RESP2,
   * where a subscribed connection takes no GET, and on a cluster, whose subscriber connection is
   * not the key's node's, it is sent on `fallback` after the SUBSCRIBE.
   */
  async watchAndRead(
    channel: string,
    listener: Listener,
    key?: string,
    fallback?: RedisClient,
  ): Promise<{ unsubscribe: Unsubscribe; raw: string | null }> {
    const subscriber = await this.open();
    let set = this.listeners.get(channel);
    let subscribed: Promise<unknown> | undefined;
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      subscribed = subscriber.subscribe(channel);
    }
    set.add(listener);
    let raw: string | null = null;
    try {
      if (key === undefined) await subscribed;
      else if (fallback !== undefined && !(subscriber instanceof Redis && subscriber.options.protocol === 3)) {
        await subscribed;
        raw = await fallback.get(key);
      } else {
        const reading = subscriber.get(key);
        reading.catch(() => undefined); // read below; a failed SUBSCRIBE must not leave it unhandled
        await subscribed;
        raw = await reading.catch(async (error: unknown) => {
          if (fallback === undefined || !SUBSCRIBED_ONLY.test((error as Error).message)) throw error;
          return fallback.get(key);
        });
      }
    } catch (error) {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel);
      throw error;
    }
    let active = true;
    const unsubscribe = async (): Promise<void> => {
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
    return { unsubscribe, raw };
  }

  /** Drops every listener and the subscriber connection. */
  close(): void {
    this.listeners.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    void subscriber?.then(
      (client) => this.connection.closeDuplicate(client),
      () => undefined,
    );
  }

  private open(): Promise<RedisClient> {
    this.subscriber ??= this.connection
      .subscriber('watch', () => [...this.listeners.keys()])
      .then((client) => {
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
