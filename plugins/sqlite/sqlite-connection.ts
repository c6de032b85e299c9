import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database, { type Database as SqliteDatabase, type Statement } from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { stateWriteKey, type StateWriteKey } from '../../sdk/contracts/index.js';
import { DatabaseUnavailableError, StemError } from '../../sdk/errors.js';
import { ChangeMonitor } from './change-monitor.js';
import { SqliteMigrations } from './migrations/index.js';
import { MEMORY, type ResolvedSqliteOptions } from './sqlite-options.js';
import type { SqliteStateWriter } from './sqlite-state-writer.js';

/** A migration failed; the message names it and the cause. */
export class SqliteMigrationError extends StemError {
  constructor(file: string, migration: string | undefined, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'migration-failed',
      `migrating ${file} failed${migration ? ` at ${migration}` : ''}: ${reason}; fix the cause (or move the file aside) and start again`,
      { cause },
    );
  }
}

/** The table that records applied migrations (and its lock table), named so they cannot clash with a project's own. */
const MIGRATION_TABLE = 'stem_migration';
const MIGRATION_LOCK_TABLE = 'stem_migration_lock';

/** Open connections by file, so that every service of one process on one file shares one handle. */
const openFiles = new Map<string, Promise<SqliteConnection>>();

/**
 * One better-sqlite3 handle on a database file, shared (reference-counted) by every service of this
 * process that uses the file: WAL mode, `synchronous = NORMAL` (a committed write survives the
 * crash of any process), a busy timeout for the write lock other processes hold, and the plugin's
 * migrations, run through Kysely's migrator inside `BEGIN IMMEDIATE` so that processes starting at
 * once migrate one after the other.
 *
 * better-sqlite3 is synchronous: every operation of the services is one short statement or one
 * short transaction, run to the end before the event loop goes on, so no two of this process's
 * operations ever interleave (Kysely's own transactions, which await between statements, are never
 * used after the migrations).
 */
export class SqliteConnection {
  /** Change notifications of other processes. */
  readonly monitor: ChangeMonitor;
  /** The key a result backend on this connection answers `stateWriter` for: the broker then writes states in its own transaction. */
  readonly stateWrites: StateWriteKey<SqliteStateWriter> = stateWriteKey('sqlite');
  private readonly statements = new Map<string, Statement>();
  private readonly immediateTx: { immediate<T>(body: () => T): T };
  private readonly timers = new Set<NodeJS.Timeout>();
  private references = 0;
  private closed = false;

  private constructor(
    /** The better-sqlite3 handle. */
    readonly db: SqliteDatabase,
    /** The Kysely instance over the same handle (migrations). */
    readonly kysely: Kysely<any>,
    /** The options it was opened with (file-level ones apply to every service on it). */
    readonly options: ResolvedSqliteOptions,
  ) {
    this.monitor = new ChangeMonitor(db, options.file === MEMORY ? undefined : options.file, options.pollIntervalMs);
    const tx = db.transaction((body: () => unknown) => body());
    this.immediateTx = { immediate: <T>(body: () => T): T => tx.immediate(body) as T };
  }

  /**
   * The open connection to `options.file` in this process (retained once more), or a new one:
   * the directory is created, the file opened and migrated. An in-memory database is never shared.
   */
  static async open(options: ResolvedSqliteOptions): Promise<SqliteConnection> {
    if (options.file === MEMORY) return SqliteConnection.create(options);
    let opening = openFiles.get(options.file);
    if (opening === undefined) {
      opening = SqliteConnection.create(options);
      openFiles.set(options.file, opening);
      opening.catch(() => openFiles.delete(options.file));
    }
    const connection = await opening;
    // Released to zero (and closing) while this caller waited: open it afresh.
    return connection.isClosed ? SqliteConnection.open(options) : connection;
  }

  private static async create(options: ResolvedSqliteOptions): Promise<SqliteConnection> {
    let db: SqliteDatabase;
    try {
      if (options.file !== MEMORY) mkdirSync(dirname(options.file), { recursive: true });
      db = new Database(options.file, { timeout: options.busyTimeoutMs });
      db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
      if (options.file !== MEMORY) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new DatabaseUnavailableError(
        options.url,
        `cannot open the SQLite file ${options.file} (${reason})`,
        'check that its directory can be created and written, and that it is on a local disk (not a network file system)',
        error,
      );
    }
    const kysely = new Kysely<any>({ dialect: new SqliteDialect({ database: db }) });
    const connection = new SqliteConnection(db, kysely, options);
    if (options.migrate) {
      try {
        await migrate(db, kysely, options.file);
      } catch (error) {
        await kysely.destroy().catch(() => undefined);
        throw error;
      }
    }
    return connection;
  }

  /** One more user; release() once per retain(). */
  retain(): void {
    this.references++;
  }

  /** One user fewer; the last one closes the handle. */
  async release(): Promise<void> {
    this.references--;
    if (this.references > 0 || this.closed) return;
    this.closed = true;
    if (openFiles.get(this.options.file) !== undefined) openFiles.delete(this.options.file);
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    this.monitor.close();
    this.statements.clear();
    // Kysely's destroy closes the better-sqlite3 handle.
    await this.kysely.destroy();
  }

  /** True once the last user released it. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A prepared statement, compiled once per connection. Shared: a caller that plucks must pluck
   * every time it uses the same text (better-sqlite3's pluck() changes the statement).
   */
  prepare(source: string): Statement {
    let statement = this.statements.get(source);
    if (statement === undefined) {
      statement = this.db.prepare(source);
      this.statements.set(source, statement);
    }
    return statement;
  }

  /**
   * Runs `body` in a `BEGIN IMMEDIATE` transaction: it holds the write lock from its first statement, so it never fails halfway on
   * a lock upgrade.
   */
  immediate<T>(body: () => T): T {
    return this.immediateTx.immediate(body);
  }

  /** Runs `task` every `ms` (unref'd) until release; errors are ignored (the next run tries again). */
  every(ms: number, task: () => void): () => void {
    const timer = setInterval(() => {
      if (this.closed) return;
      try {
        task();
      } catch {
        // Busy or closing: the next run tries again.
      }
    }, ms);
    timer.unref();
    this.timers.add(timer);
    return () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
  }
}

/** True for SQLITE_BUSY (and its variants): another process held the write lock past the busy timeout. */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Brings the file to the latest migration; a file already there costs one read and no write lock. */
async function migrate(db: SqliteDatabase, kysely: Kysely<any>, file: string): Promise<void> {
  const provider = new SqliteMigrations();
  const wanted = Object.keys(await provider.getMigrations());
  if (appliedMigrations(db).length >= wanted.length) return;
  const migrator = new Migrator({
    db: kysely,
    provider,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  // The write lock serialises processes that start at once; the second finds nothing left to do.
  db.exec('BEGIN IMMEDIATE');
  try {
    const { error, results } = await migrator.migrateToLatest();
    if (error !== undefined) {
      const failed = results?.find((result) => result.status === 'Error');
      throw new SqliteMigrationError(file, failed?.migrationName, error);
    }
    db.exec('COMMIT');
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error instanceof SqliteMigrationError ? error : new SqliteMigrationError(file, undefined, error);
  }
}

function appliedMigrations(db: SqliteDatabase): string[] {
  const exists = db.prepare(`select 1 from sqlite_master where type = 'table' and name = ?`).get(MIGRATION_TABLE);
  if (exists === undefined) return [];
  return db.prepare(`select name from ${MIGRATION_TABLE}`).pluck().all() as string[];
}
