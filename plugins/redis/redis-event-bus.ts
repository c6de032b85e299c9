import type { EventBus, StemEvent, StemEventListener } from '../../sdk/contracts/event-bus.js';
import { decodeEventBatch, encodeEventBatches } from '../../sdk/event-codec.js';
import { keyPrefix } from './key-part.js';
import type { RedisClient, RedisConnection } from './redis-connection.js';
import { RedisService } from './redis-service.js';

/** The largest message one PUBLISH carries; a bigger batch is cut into several. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * The event stream over Redis pub/sub: one channel per namespace (`<namespace>:events`), one
 * PUBLISH of a JSON array per batch on the shared command connection, and one subscriber
 * connection per process, opened on the first subscribe. Pub/sub rather than a capped stream:
 * with nobody subscribed a PUBLISH stores nothing and costs the server one lookup, where an
 * XADD would write (and trim) every event whether or not anyone reads it. The price is that
 * events published while no subscriber is connected (or while one reconnects) are lost.
 */
export class RedisEventBus extends RedisService implements EventBus {
  /** The pub/sub channel of the namespace. */
  readonly channel: string;
  private subscriber: Promise<RedisClient> | undefined;
  private readonly listeners = new Set<StemEventListener>();

  constructor(connection: RedisConnection) {
    super(connection, 'Redis event bus');
    this.channel = `${keyPrefix(connection.namespace)}:events`;
  }

  /** One PUBLISH per 1 MB of events, sent without waiting for one another (ordered on the connection). */
  async publish(events: readonly StemEvent[]): Promise<void> {
    this.assertOpen();
    if (events.length === 0) return;
    await Promise.all(encodeEventBatches(events, MAX_MESSAGE_BYTES).map((message) => this.client.publish(this.channel, message)));
  }

  /** SUBSCRIBEs the process's subscriber connection on first use; resolves once subscribed. */
  async subscribe(listener: StemEventListener): Promise<() => Promise<void>> {
    this.assertOpen();
    await this.open();
    const own = (event: StemEvent) => listener(event);
    this.listeners.add(own);
    return async () => {
      this.listeners.delete(own);
    };
  }

  private open(): Promise<RedisClient> {
    this.subscriber ??= (async () => {
      const client = await this.connection.subscriber('events', () => [this.channel]);
      client.on('message', (channel: string, message: string) => {
        if (channel !== this.channel) return;
        for (const event of decodeEventBatch(message)) {
          for (const listener of [...this.listeners]) {
            try {
              listener(event);
            } catch (error) {
              process.emitWarning(`an event listener threw: ${(error as Error)?.message ?? String(error)}`, 'StemEventWarning');
            }
          }
        }
      });
      await client.subscribe(this.channel);
      return client;
    })();
    this.subscriber.catch(() => {
      this.subscriber = undefined;
    });
    return this.subscriber;
  }

  protected override async closeResources(): Promise<void> {
    this.listeners.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    const client = await subscriber?.catch(() => undefined);
    if (client !== undefined) this.connection.closeDuplicate(client);
  }
}
