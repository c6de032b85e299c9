import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, type RawBuilder } from 'kysely';
import pg from 'pg';
import { stateWriteKey, type StateWriteKey } from '../../sdk/contracts/index.js';
import { ServiceUnavailableError } from '../../sdk/errors.js';
import type { Database } from './database.js';
import { ignoreDroppedConnections, isConnectionError } from './connection-errors.js';
import { NotificationListener } from './notification-listener.js';
import { maskUrl } from '../../sdk/url.js';
import type { ResolvedPostgresOptions } from './postgres-options.js';
import type { PostgresStateWriter } from './postgres-state-writer.js';
import { migrateSchema } from './schema-migrator.js';

/** Re-exported where the pool's users (consumer, services) have always found it. */
export { isConnectionError };

/** A statement compiled once (`PostgresConnection.compile`): its text, its prepared statement's name and its parameters. */
export interface CompiledStatement<Row> {
  readonly name: string;
  readonly text: string;
  readonly parameters: readonly unknown[];
  /** Only carries the row type. */
  readonly row?: Row;
}

const RETRY_DELAYS_MS = [0, 50, 200, 500, 1_000];

/**
 * What every Postgres service of one plugin shares: the pool, the Kysely instance, the LISTEN
 * connection and the schema. Reference-counted: each service retains it and releases it on close;
 * the last release ends the pool.
 */
export class PostgresConnection {
  /** The Kysely instance, bound to the schema. */
  readonly db: Kysely<Database>;
  /** The one LISTEN connection. */
  readonly listener: NotificationListener;
  /** The URL with the password masked. */
  readonly safeUrl: string;
  /** The key a broker and a backend on this connection share to write states in one statement. */
  readonly stateWrites: StateWriteKey<PostgresStateWriter> = stateWriteKey('postgres');
  private references = 0;
  private ending: Promise<void> | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly statementNames = new Map<string, string>();

  private constructor(
    readonly options: ResolvedPostgresOptions,
    readonly pool: pg.Pool,
    private readonly root: Kysely<Database>,
  ) {
    this.db = root.withSchema(options.schema);
    this.listener = new NotificationListener(listenerClientConfig(options));
    this.safeUrl = maskUrl(options.url);
  }

  /**
   * Opens a pool, checks that the server answers (ServiceUnavailableError naming the masked URL
   * otherwise) and runs the migrations unless `migrate` is false.
   */
  static async open(options: ResolvedPostgresOptions): Promise<PostgresConnection> {
    const pool = new pg.Pool(poolConfig(options));
    ignoreDroppedConnections(pool);
    const root = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const connection = new PostgresConnection(options, pool, root);
    try {
      if (options.migrate) await migrateSchema(root, pool, options.schema);
      else await pool.query('SELECT 1');
    } catch (error) {
      await root.destroy().catch(() => undefined);
      if (isConnectionError(error) || isUnreachable(error)) throw new ServiceUnavailableError(maskUrl(options.url), error);
      throw error;
    }
    return connection;
  }

  /** Adds a user; pair with release(). */
  retain(): this {
    this.references++;
    return this;
  }

  /** Drops a user; the last one ends the pool and the LISTEN connection. */
  async release(): Promise<void> {
    this.references--;
    if (this.references > 0) return;
    this.ending ??= this.end();
    await this.ending;
  }

  /**
   * Runs a statement, retrying when the connection was dropped under it (server restart,
   * `pg_terminate_backend`): the pool replaces the dead connection on the next try. Callers pass
   * only statements that are safe to run twice, or where a rerun means an extra delivery at most.
   */
  async run<T>(statement: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await statement();
      } catch (error) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined || !isConnectionError(error) || this.ending !== undefined) throw error;
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * Runs `statement` as a named prepared statement: each pooled connection parses and plans a
   * given SQL text once, then only binds and executes it. For the statements a worker runs per
   * batch (claim, settle), where parsing and planning cost as much as a small batch's execution.
   * Not retried: wrap it in `run` like any other statement.
   */
  async prepared<Row>(statement: RawBuilder<Row>): Promise<Row[]> {
    const { name, text, parameters } = this.compile(statement);
    const result = await this.pool.query<Row & pg.QueryResultRow>({ name, text, values: parameters as unknown[] });
    return result.rows;
  }

  /**
   * Compiles `statement` for `runCompiled`, once, where only its values change from one run to the
   * next (the claim): a claim then costs no query building. Every raw statement of this plugin names
   * its tables with their schema, so it compiles without the schema plugin's pass over the tree.
   */
  compile<Row>(statement: RawBuilder<Row>): CompiledStatement<Row> {
    const { sql: text, parameters } = statement.compile(this.root);
    let name = this.statementNames.get(text);
    if (name === undefined) {
      name = `stem_${createHash('sha1').update(text).digest('base64url')}`;
      this.statementNames.set(text, name);
    }
    return { name, text, parameters };
  }

  /** Runs a compiled statement as a named prepared statement with `values` (its parameters' order). Not retried. */
  async runCompiled<Row>(statement: CompiledStatement<Row>, values: readonly unknown[]): Promise<Row[]> {
    const result = await this.pool.query<Row & pg.QueryResultRow>({
      name: statement.name,
      text: statement.text,
      values: values as unknown[],
    });
    return result.rows;
  }

  /** Runs `task` every `intervalMs` until the connection ends; errors are ignored (it runs again). */
  every(intervalMs: number, task: () => Promise<unknown>): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      task()
        .catch(() => undefined)
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    this.timers.add(timer);
    return () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
  }

  /** A NOTIFY channel name for this schema, namespace and purpose, within Postgres's 63 bytes. */
  channel(purpose: string): string {
    const name = `${this.options.schema}:${this.options.namespace}:${purpose}`;
    if (Buffer.byteLength(name) <= 63) return name;
    let hash = 0x811c9dc5;
    for (const char of name) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    return `${this.options.schema.slice(0, 40)}:${purpose.slice(0, 8)}:${hash.toString(36)}`;
  }

  private async end(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    await this.listener.close();
    await this.root.destroy();
  }
}

/**
 * The pg pool's settings. pg reads the URL itself (user, password, `sslmode`, `sslrootcert`, …);
 * the `ssl` option is passed as it is (options refuse it together with URL ssl parameters).
 */
export function poolConfig(options: ResolvedPostgresOptions): pg.PoolConfig {
  const config: pg.PoolConfig = {
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: options.applicationName,
  };
  if (options.ssl !== undefined) config.ssl = options.ssl;
  return config;
}

/** The LISTEN connection's settings: the pool's URL and TLS, its own application name. */
export function listenerClientConfig(options: ResolvedPostgresOptions): pg.ClientConfig {
  const config: pg.ClientConfig = {
    connectionString: options.url,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: `${options.applicationName}:listen`.slice(0, 63),
  };
  if (options.ssl !== undefined) config.ssl = options.ssl;
  return config;
}

function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  // 28P01/28000: authentication failed; 3D000: the database does not exist.
  return code === '28P01' || code === '28000' || code === '3D000' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH';
}
