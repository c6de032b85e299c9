import type { Kysely, Migration } from 'kysely';

/**
 * The result backend's tables: task states (with their position in the order of states), groups
 * and their member results, chord claims and worker heartbeats. Released: never change this file.
 */
export const resultBackendTables: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    // generation, attempt and phase: the state's position (sdk/state-order.ts), compared by the upsert.
    await db.schema
      .createTable('stem_results')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('phase', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_results_pkey', ['namespace', 'id'])
      .execute();
    await db.schema.createIndex('stem_results_expiry').on('stem_results').columns(['expires_at']).execute();

    await db.schema
      .createTable('stem_groups')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('member_ids', 'text', (c) => c.notNull())
      .addColumn('expected', 'integer', (c) => c.notNull())
      .addColumn('completed', 'integer', (c) => c.notNull())
      .addColumn('expires_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_groups_pkey', ['namespace', 'id'])
      .execute();

    await db.schema
      .createTable('stem_group_results')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('group_id', 'text', (c) => c.notNull())
      .addColumn('member_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_group_results_pkey', ['namespace', 'group_id', 'member_id'])
      .execute();

    await db.schema
      .createTable('stem_chords')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('claimer', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('claimed_at', 'integer', (c) => c.notNull())
      .addColumn('lease_ends_at', 'integer')
      .addColumn('fired', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('expires_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_chords_pkey', ['namespace', 'id'])
      .execute();

    await db.schema
      .createTable('stem_workers')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('worker_id', 'text', (c) => c.notNull())
      .addColumn('beat', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_workers_pkey', ['namespace', 'worker_id'])
      .execute();
  },
};
