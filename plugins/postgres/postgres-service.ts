import { sql } from 'kysely';
import { ClosedError } from '../../sdk/errors.js';
import { PostgresConnection } from './postgres-connection.js';
import { resolvePostgresOptions, type PostgresOptions } from './postgres-options.js';

/**
 * What every Postgres service shares: the connection it retains until close, its namespace and
 * schema-qualified tables, the closed check, and `connect` to make one on a pool of its own.
 */
export abstract class PostgresService {
  private closed = false;

  /** Uses a shared connection (retained until close); `what` names the service in ClosedError. */
  constructor(
    protected readonly connection: PostgresConnection,
    private readonly what: string,
  ) {
    connection.retain();
  }

  /** Opens a pool of its own (migrating unless `migrate: false`) and returns a ready service. */
  static async connect<T extends PostgresService>(this: new (connection: PostgresConnection) => T, options: PostgresOptions): Promise<T> {
    return new this(await PostgresConnection.open(resolvePostgresOptions(options, this.name)));
  }

  /** The namespace of its rows. */
  protected get namespace(): string {
    return this.connection.options.namespace;
  }

  /** A table of the plugin's schema, for raw SQL. */
  protected table(name: string) {
    return sql.table(`${this.connection.options.schema}.${name}`);
  }

  /** Throws ClosedError after close(). */
  protected assertOpen(): void {
    if (this.closed) throw new ClosedError(this.what);
  }

  /** True once close() was called. */
  protected get isClosed(): boolean {
    return this.closed;
  }

  /** Releases what the service holds beyond the connection (subclasses). */
  protected async dispose(): Promise<void> {}

  /** Releases the connection; later calls throw ClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dispose();
    await this.connection.release();
  }
}
