import type { EventBus, StemEvent, StemEventListener } from '../../sdk/contracts/event-bus.js';
import { decodeEventBatch, encodeEventBatches } from '../../sdk/event-codec.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

/** A NOTIFY payload must stay under 8000 bytes; this leaves room for the server's own framing. */
const MAX_NOTIFY_BYTES = 7900;

/**
 * The event stream over Postgres NOTIFY: one channel per schema and namespace, a JSON array of
 * events per NOTIFY (cut to stay under the 8000-byte payload limit), received on the plugin's one
 * LISTEN connection. With nobody listening, a NOTIFY outside a transaction is one short statement
 * the server drops at once. Events sent while a listener reconnects are lost.
 */
export class PostgresEventBus extends PostgresService implements EventBus {
  /** The NOTIFY channel of this schema and namespace. */
  readonly channel: string;

  constructor(connection: PostgresConnection) {
    super(connection, 'Postgres event bus');
    this.channel = connection.channel('events');
  }

  /** One `pg_notify` per batch of under 8000 bytes, sent one after another so they arrive in order. */
  async publish(events: readonly StemEvent[]): Promise<void> {
    this.assertOpen();
    for (const payload of encodeEventBatches(events, MAX_NOTIFY_BYTES)) {
      await this.connection.pool.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
    }
  }

  /** LISTENs on the channel (on the plugin's shared LISTEN connection); resolves once listening. */
  async subscribe(listener: StemEventListener): Promise<() => Promise<void>> {
    this.assertOpen();
    return this.connection.listener.listen(this.channel, (payload) => {
      for (const event of decodeEventBatch(payload)) {
        try {
          listener(event);
        } catch (error) {
          process.emitWarning(`an event listener threw: ${(error as Error)?.message ?? String(error)}`, 'StemEventWarning');
        }
      }
    });
  }
}
