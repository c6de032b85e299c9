import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Task listing (`listTasks`, #23): each state row carries its `updated_at` (epoch ms, from the
 * status), backfilled here, and one index lists a namespace's rows of a state newest first, ties
 * by id (BINARY collation: byte order, the order every backend lists in). Listing several states
 * reads it once per state. Released: never change this file.
 */
export const taskListing: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await sql`alter table stem_results add column updated_at integer not null default 0`.execute(db);
    await sql`update stem_results set updated_at = coalesce(cast(json_extract(status, '$.updatedAt') as integer), 0)`.execute(db);
    await sql`create index stem_results_listing on stem_results (namespace, state, updated_at, id)`.execute(db);
  },
};
