import { ClosedError } from '../../sdk/errors.js';
import { RedisConnection, type RedisClient } from './redis-connection.js';
import { resolveConnectionOptions, type RedisConnectionOptions } from './redis-options.js';

/**
 * What every Redis service shares: a retained connection (released on close, which is
 * idempotent) and the closed check.
 */
export abstract class RedisService {
  /** The connection this service uses (shared with other services under `redis()`). */
  readonly connection: RedisConnection;
  /** The command connection's client. */
  protected readonly client: RedisClient;
  private closed = false;

  /** Retains `connection` until close. */
  constructor(
    connection: RedisConnection,
    private readonly label: string,
  ) {
    this.connection = connection.retain();
    this.client = connection.client;
  }

  /** Opens a connection to `url`, builds a service on it, and leaves the service its only user. */
  protected static async openWith<T>(
    url: string,
    options: RedisConnectionOptions,
    label: string,
    build: (connection: RedisConnection) => T,
  ): Promise<T> {
    const connection = await RedisConnection.open(resolveConnectionOptions({ ...options, url }, label));
    try {
      return build(connection);
    } finally {
      await connection.release();
    }
  }

  /** True once close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Releases what the service holds, then its use of the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeResources();
    await this.connection.release();
  }

  /** Releases the service's own resources (consumers, subscriptions) before the connection. */
  protected async closeResources(): Promise<void> {}

  /** Throws ClosedError after close(). */
  protected assertOpen(): void {
    if (this.closed) throw new ClosedError(this.label);
  }
}
