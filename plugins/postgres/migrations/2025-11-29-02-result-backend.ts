import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The result backend's tables: task states with a TTL, groups and their member results, chord
 * claims, worker heartbeats. Released: never change this file; add a new dated migration instead.
 */
export function resultBackendTables(schema: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      const s = db.schema.withSchema(schema);
      await s
        .createTable('stem_results')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('status', 'json', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_results_pkey', ['namespace', 'id'])
        .execute();
      await s.createIndex('stem_results_expiry').on('stem_results').column('expires_at').execute();

      await s
        .createTable('stem_groups')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('member_ids', 'json', (c) => c.notNull())
        .addColumn('expected', 'integer', (c) => c.notNull())
        .addColumn('completed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_groups_pkey', ['namespace', 'id'])
        .execute();
      await s.createIndex('stem_groups_expiry').on('stem_groups').column('expires_at').execute();

      await s
        .createTable('stem_group_results')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('member_id', 'text', (c) => c.notNull())
        .addColumn('status', 'json', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_group_results_pkey', ['namespace', 'group_id', 'member_id'])
        .addForeignKeyConstraint('stem_group_results_group', ['namespace', 'group_id'], 'stem_groups', ['namespace', 'id'], (c) =>
          c.onDelete('cascade'),
        )
        .execute();

      await s
        .createTable('stem_chords')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('claimed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_chords_pkey', ['namespace', 'id'])
        .execute();
      await s.createIndex('stem_chords_expiry').on('stem_chords').column('expires_at').execute();

      await s
        .createTable('stem_workers')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('worker_id', 'text', (c) => c.notNull())
        .addColumn('beat', 'json', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_workers_pkey', ['namespace', 'worker_id'])
        .execute();
      await s.createIndex('stem_workers_expiry').on('stem_workers').column('expires_at').execute();
    },
  };
}
