import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Task listing (`listTasks`, #23): one index lists a namespace's states newest first, by the
 * status's `updatedAt` and then the id (BINARY collation: byte order, the order every backend
 * lists in). It leaves out `queued` rows (a partial index), so an enqueue writes what it wrote
 * before and no index entry; queued tasks are listed by a scan instead. Released: never change
 * this file.
 */
export const taskListing: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await sql`create index stem_results_listing on stem_results
      (namespace, state, json_extract(status, '$.updatedAt'), id) where state <> 'queued'`.execute(db);
  },
};
