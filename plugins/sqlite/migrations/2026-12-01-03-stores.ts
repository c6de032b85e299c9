import type { Kysely, Migration } from 'kysely';

/** The revoke, schedule and lock stores' tables and the rate limiter's buckets. Released: never change this file. */
export const storeTables: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await db.schema
      .createTable('stem_revokes')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('terminate', 'integer', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('revoked_at', 'integer', (c) => c.notNull())
      .addColumn('expires_at', 'integer')
      .addPrimaryKeyConstraint('stem_revokes_pkey', ['namespace', 'task_id'])
      .execute();
    await db.schema.createIndex('stem_revokes_version').on('stem_revokes').columns(['namespace', 'version']).execute();

    await db.schema
      .createTable('stem_schedules')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('entry', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('next_run_at', 'real')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_schedules_pkey', ['namespace', 'id'])
      .execute();
    await db.schema.createIndex('stem_schedules_due').on('stem_schedules').columns(['namespace', 'enabled', 'next_run_at']).execute();

    await db.schema
      .createTable('stem_locks')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_locks_pkey', ['namespace', 'key'])
      .execute();

    await db.schema
      .createTable('stem_rate_buckets')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('tokens', 'real', (c) => c.notNull())
      .addColumn('refilled_at', 'real', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_rate_buckets_pkey', ['namespace', 'key'])
      .execute();
  },
};
