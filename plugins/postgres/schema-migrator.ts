import { Kysely, Migrator, PostgresDialect, type MigrationResult } from 'kysely';
import pg from 'pg';
import { ServiceUnavailableError, StemError } from '../../sdk/errors.js';
import { SchemaMigrations } from './migrations/index.js';
import { maskUrl } from '../../sdk/url.js';
import { resolvePostgresOptions } from './postgres-options.js';
import { quoteIdentifier } from './notification-listener.js';
import { ignoreDroppedConnections } from './connection-errors.js';

/** The first key of the two-key advisory lock that serialises migrations (the second is the schema's hash). */
const MIGRATION_LOCK_KEY = 0x5374656d; // "Stem"

/** A migration failed; the message names it and the cause. */
export class MigrationError extends StemError {
  constructor(schema: string, migration: string | undefined, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'migration-failed',
      `migrating schema "${schema}" failed${migration ? ` at ${migration}` : ''}: ${reason}; fix the cause and run \`stem migrate\` again`,
      { cause },
    );
  }
}

/** How often a migration is tried when another schema vanished under Kysely's introspection. */
const INTROSPECTION_ATTEMPTS = 5;

/**
 * True when `error` says a schema other than `schema`, or a table in one, does not exist
 * (SQLSTATE 3F000, or 42P01 naming `"other.table"`): it vanished under the introspection. Also
 * 42703 raised inside `pg_get_serial_sequence`, which the introspection calls for every column of
 * every table: a table of another schema dropped between listing and look-up (seen in CI, with
 * test files dropping their schemas while another migrated).
 */
function isOtherSchemaGone(error: unknown, schema: string): boolean {
  const { code, message, routine } = (error ?? {}) as { code?: unknown; message?: unknown; routine?: unknown };
  if (typeof message !== 'string' || message.includes(`"${schema}"`) || message.includes(`"${schema}.`)) return false;
  if (code === '42703' && routine === 'pg_get_serial_sequence') return true;
  return code === '3F000' || (code === '42P01' && /relation "[^"]+\.[^"]+" does not exist/.test(message));
}

/**
 * Brings `schema` to the latest migration. A session-level advisory lock, held on a connection of
 * its own, makes concurrent callers (two workers starting at once) wait for each other; the
 * second finds nothing left to do. Returns the names of the migrations it applied.
 */
export async function migrateSchema(db: Kysely<any>, pool: pg.Pool, schema: string): Promise<string[]> {
  const lock = await pool.connect();
  let broken = false;
  try {
    await lock.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK_KEY, schema]);
    try {
      await lock.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      const migrator = new Migrator({ db, provider: new SchemaMigrations(schema), migrationTableSchema: schema });
      let { error, results } = await migrator.migrateToLatest();
      // Kysely's migrator introspects every schema of the database; one dropped meanwhile by
      // someone else (another app, a test's cleanup) fails that look-up, not our migration.
      for (let attempt = 1; attempt < INTROSPECTION_ATTEMPTS && isOtherSchemaGone(error, schema); attempt++) {
        ({ error, results } = await migrator.migrateToLatest());
      }
      if (error !== undefined) {
        const failed = results?.find((result: MigrationResult) => result.status === 'Error');
        throw new MigrationError(schema, failed?.migrationName, error);
      }
      return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK_KEY, schema]).catch(() => {
        broken = true;
      });
    }
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // A connection whose unlock failed may still hold the lock: destroy it rather than pool it.
    lock.release(broken);
  }
}

/** Applies the plugin's migrations to `schema` (default `stem`) of the database at `url`; returns the names applied. */
export async function runMigrations(url: string, schema = 'stem'): Promise<string[]> {
  const options = resolvePostgresOptions({ url, schema }, 'runMigrations');
  const pool = new pg.Pool({ connectionString: options.url, max: 2, connectionTimeoutMillis: options.connectTimeoutMs });
  ignoreDroppedConnections(pool);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  try {
    return await migrateSchema(db, pool, options.schema);
  } catch (error) {
    if (error instanceof StemError) throw error;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code.startsWith('08') || code.startsWith('28') || code === '3D000')) {
      throw new ServiceUnavailableError(maskUrl(url), error);
    }
    throw error;
  } finally {
    await db.destroy();
  }
}
