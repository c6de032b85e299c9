import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The revoke store, schedule store, lock store and rate limiter tables.
 * Released: never change this file; add a new dated migration instead.
 */
export function storeTables(schema: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      const s = db.schema.withSchema(schema);
      await s
        .createTable('stem_revokes')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('terminate', 'boolean', (c) => c.notNull().defaultTo(false))
        .addColumn('reason', 'text')
        .addColumn('revoked_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addPrimaryKeyConstraint('stem_revokes_pkey', ['namespace', 'task_id'])
        .execute();
      await s.createIndex('stem_revokes_version').on('stem_revokes').columns(['namespace', 'version']).execute();
      await s.createIndex('stem_revokes_expiry').on('stem_revokes').columns(['namespace', 'expires_at']).execute();

      await s
        .createTable('stem_schedules')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('entry', 'json', (c) => c.notNull())
        .addColumn('enabled', 'boolean', (c) => c.notNull())
        .addColumn('next_run_at', 'bigint')
        .addColumn('version', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_schedules_pkey', ['namespace', 'id'])
        .execute();
      await s
        .createIndex('stem_schedules_due')
        .on('stem_schedules')
        .columns(['namespace', 'next_run_at'])
        .where(sql.ref('enabled'), '=', true)
        .execute();

      await s
        .createTable('stem_locks')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_locks_pkey', ['namespace', 'key'])
        .execute();

      await s
        .createTable('stem_rate_buckets')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('tokens', 'float8', (c) => c.notNull())
        .addColumn('refilled_at', 'float8', (c) => c.notNull())
        .addColumn('allowed', 'boolean', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_rate_buckets_pkey', ['namespace', 'key'])
        .execute();
    },
  };
}
