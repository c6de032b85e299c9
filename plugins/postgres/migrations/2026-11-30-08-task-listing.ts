import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Task listing (`listTasks`, #23): each state row carries its `updated_at` (epoch ms, from the
 * status) as a column, backfilled here, and one index lists a namespace's rows of a state newest
 * first, ties by id in byte order (collation "C", the order every backend lists in). Listing
 * several states reads this index once per state and merges. State changes were not HOT updates
 * before (`expires_at` changes with every write and is indexed), so this adds one index entry per
 * write, nothing more. Released: never change this file; add a new dated migration.
 */
export function taskListing(schema: string): Migration {
  const table = sql.table(`${schema}.stem_results`);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`alter table ${table} add column updated_at bigint not null default 0`.execute(db);
      await sql`update ${table} set updated_at = coalesce((status->>'updatedAt')::numeric::bigint, 0)
        where status->>'updatedAt' is not null`.execute(db);
      await sql`create index ${sql.id('stem_results_listing')} on ${table}
        (namespace, state, updated_at, (id collate "C"))`.execute(db);
    },
  };
}
