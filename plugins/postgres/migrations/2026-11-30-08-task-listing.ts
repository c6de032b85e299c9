import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Task listing (`listTasks`, #23): one index lists a namespace's states newest first, by the
 * status's `updatedAt` and then the id in byte order (collation "C", the order every backend lists
 * in). It leaves out `queued` rows (a partial index): an enqueue inserts its row without an index
 * entry, so the enqueue path costs what it cost before (an entry per insert measured more than the
 * 5% an enqueue may lose); queued tasks are listed by a scan instead. A state change was already no
 * HOT update (`expires_at` changes with each write and is indexed), so a worker's write adds an
 * entry, nothing more. Released: never change this file; add a new dated migration instead.
 */
export function taskListing(schema: string): Migration {
  const table = sql.table(`${schema}.stem_results`);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`create index ${sql.id('stem_results_listing')} on ${table}
        (namespace, state, ((status->>'updatedAt')::numeric), (id collate "C")) where state <> 'queued'`.execute(db);
    },
  };
}
