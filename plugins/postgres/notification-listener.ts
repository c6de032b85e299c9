import pg from 'pg';
import { isConnectionError } from './connection-errors.js';

/** Receives the payload of one NOTIFY on a channel. */
export type NotificationHandler = (payload: string) => void;

const MIN_RECONNECT_DELAY_MS = 50;
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * One dedicated connection that LISTENs on behalf of every consumer and watch of a process.
 * It is not taken from the pool: a pooled connection would be handed to other queries.
 * When the connection drops (a restart, `pg_terminate_backend`), it reconnects with backoff,
 * LISTENs again and calls the `onReconnect` callbacks so that callers catch up on what they
 * may have missed while it was down.
 */
export class NotificationListener {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly channels = new Map<string, Set<NotificationHandler>>();
  private readonly reconnectCallbacks = new Set<() => void>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = MIN_RECONNECT_DELAY_MS;
  private closed = false;

  constructor(private readonly config: pg.ClientConfig) {}

  /**
   * Registers `handler` for `channel` and LISTENs on it; resolves once it listens, or once the
   * connection died trying (killed, server restarting): the channel then stays registered, the
   * reconnection LISTENs on it with backoff and calls the `onReconnect` callbacks, exactly as when
   * the connection dies after LISTEN. Rejects only for what no retry mends (closed, bad
   * credentials), with the handler removed.
   */
  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    const first = handlers === undefined;
    if (handlers === undefined) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    handlers.add(handler);
    if (first || this.client === undefined) {
      let client: pg.Client | undefined;
      try {
        client = await this.connect();
        if (first) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
      } catch (error) {
        if (this.closed || !isConnectionError(error)) {
          handlers.delete(handler);
          if (handlers.size === 0 && this.channels.get(channel) === handlers) this.channels.delete(channel);
          throw error;
        }
        // The LISTEN connection may not have reported its death yet: stop using it now.
        if (client !== undefined) this.discard(client);
        this.scheduleReconnect();
      }
    }
    return async () => {
      const current = this.channels.get(channel);
      if (current === undefined || !current.delete(handler) || current.size > 0) return;
      this.channels.delete(channel);
      await this.client?.query(`UNLISTEN ${quoteIdentifier(channel)}`).catch(() => undefined);
    };
  }

  /** Calls `callback` after each reconnection; returns a function that removes it. */
  onReconnect(callback: () => void): () => void {
    this.reconnectCallbacks.add(callback);
    return () => this.reconnectCallbacks.delete(callback);
  }

  /** Closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.channels.clear();
    this.reconnectCallbacks.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('the notification listener is closed'));
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    // Every 'error' and 'end' is handled for the client's whole life: an 'error' without a
    // listener would end the process. A drop after start-up schedules the reconnection.
    let started = false;
    const onDrop = (): void => {
      if (!started) return;
      started = false;
      this.discard(client);
      this.scheduleReconnect();
    };
    client.on('error', onDrop);
    client.on('end', onDrop);
    client.on('notification', (message) => {
      const handlers = this.channels.get(message.channel);
      if (handlers === undefined) return;
      for (const handler of handlers) {
        // One handler that throws must not keep the others from their wake-up, nor break the connection.
        try {
          handler(message.payload ?? '');
        } catch {
          continue;
        }
      }
    });
    try {
      await client.connect();
      for (const channel of this.channels.keys()) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('the notification listener is closed');
    }
    started = true;
    this.client = client;
    this.reconnectDelayMs = MIN_RECONNECT_DELAY_MS;
    return client;
  }

  /** Stops using `client` (dead or dying) and ends it. */
  private discard(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    client.end().catch(() => undefined);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined || this.channels.size === 0) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => {
          for (const callback of this.reconnectCallbacks) {
            // Inside a promise callback a throw would be an unhandled rejection: each catches up alone.
            try {
              callback();
            } catch {
              continue;
            }
          }
        },
        () => {
          this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, MAX_RECONNECT_DELAY_MS);
          this.scheduleReconnect();
        },
      );
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
  }
}

/** Quotes a channel name as a Postgres identifier (LISTEN takes no parameters). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
