import { ClosedError } from '../../sdk/errors.js';
import { SqliteConnection } from './sqlite-connection.js';
import { resolveSqliteOptions, type SqliteOptions } from './sqlite-options.js';

/** What a service of the plugin is made with: the shared connection and its own namespace and TTL. */
export interface SqliteServiceSettings {
  /** Separates several Stem apps in one file. */
  namespace: string;
  /** How long results, groups and chord claims are kept when a write names no TTL. */
  resultTtlMs: number;
}

/**
 * What every SQLite service shares: the connection it retains until close, its namespace, the
 * closed check, and `connect` to make one from options alone.
 */
export abstract class SqliteService {
  private closed = false;

  /** Uses a shared connection (retained until close); `what` names the service in ClosedError. */
  constructor(
    protected readonly connection: SqliteConnection,
    protected readonly settings: SqliteServiceSettings,
    private readonly what: string,
  ) {
    connection.retain();
  }

  /** Opens (or shares) the connection to the options' file and returns a ready service. */
  static async connect<T extends SqliteService>(
    this: new (
      connection: SqliteConnection,
      settings: SqliteServiceSettings,
    ) => T,
    options: SqliteOptions,
  ): Promise<T> {
    const resolved = resolveSqliteOptions(options, this.name);
    return new this(await SqliteConnection.open(resolved), { namespace: resolved.namespace, resultTtlMs: resolved.resultTtlMs });
  }

  /** The namespace of its rows. */
  protected get namespace(): string {
    return this.settings.namespace;
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
