import type { QueueKeys } from './queue-keys.js';
import type { RedisClient, RedisConnection } from './redis-connection.js';

/** Hears the due time (epoch ms) of work that became due earlier than planned; 0 means "look now". */
export type DueListener = (dueAt: number) => void;

/** The channel on which a queue's earliest new delayed task (or a re-leased broadcast) announces its due time. */
export function wakeChannel(keys: QueueKeys): string {
  return `${keys.tag}:wake`;
}

/**
 * The wake-up signal of idle consumers, over one subscriber connection per broker. A consumer
 * blocked in XREADGROUP is woken by new stream entries only; a task put in the delayed set (a
 * `notBefore`, a retry backoff, a rate-limit deferral) is not one, so the scripts that add one
 * falling due before every other PUBLISH its due time on the queue's wake channel (delay.lua,
 * requeue.lua), and the consumers of that queue shorten their wait to it. Messages missed while
 * the subscriber was reconnecting are made up for by a "look now" (0) to every listener.
 */
export class DueSignal {
  private subscriber: Promise<RedisClient> | undefined;
  private readonly listeners = new Map<string, Set<DueListener>>();
  private closed = false;

  constructor(private readonly connection: RedisConnection) {}

  /** Calls `listener` with each due time published on `channels`; resolves once subscribed, with a function that stops it. */
  async listen(channels: readonly string[], listener: DueListener): Promise<() => void> {
    const subscriber = await this.open();
    const fresh: string[] = [];
    for (const channel of channels) {
      let set = this.listeners.get(channel);
      if (set === undefined) {
        this.listeners.set(channel, (set = new Set()));
        fresh.push(channel);
      }
      set.add(listener);
    }
    if (fresh.length > 0) await subscriber.subscribe(...fresh);
    return () => {
      const gone: string[] = [];
      for (const channel of channels) {
        const set = this.listeners.get(channel);
        if (set === undefined || !set.delete(listener) || set.size > 0) continue;
        this.listeners.delete(channel);
        gone.push(channel);
      }
      if (gone.length > 0 && !this.closed) void subscriber.unsubscribe(...gone).catch(() => undefined);
    };
  }

  /** Drops every listener and the subscriber connection. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    void subscriber?.then(
      (client) => this.connection.closeDuplicate(client),
      () => undefined,
    );
  }

  private open(): Promise<RedisClient> {
    if (this.subscriber !== undefined) return this.subscriber;
    const opening = this.connection
      .subscriber('wake', () => [...this.listeners.keys()])
      .then((client) => {
        client.on('message', (channel: string, message: string) => this.dispatch(channel, Number(message)));
        // ioredis subscribes again after a reconnect; what was published meanwhile is lost: look now
        client.on('ready', () => {
          for (const set of [...this.listeners.values()]) for (const listener of set) listener(0);
        });
        return client;
      });
    this.subscriber = opening;
    // a failed connect is tried again by the next listen
    opening.catch(() => {
      if (this.subscriber === opening) this.subscriber = undefined;
    });
    return opening;
  }

  private dispatch(channel: string, dueAt: number): void {
    const set = this.listeners.get(channel);
    if (set === undefined || !Number.isFinite(dueAt)) return;
    for (const listener of set) listener(dueAt);
  }
}
