import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A task's state position as columns (generation, attempt; the phase follows from `state`), so
 * the upsert can refuse a write older than the stored one without parsing JSON. Existing rows
 * are backfilled from their status. No index covers them: state changes stay HOT updates.
 * Released: never change this file; add a new dated migration.
 */
export function stateOrder(schema: string): Migration {
  const table = sql.table(`${schema}.stem_results`);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`alter table ${table}
        add column generation integer not null default 0,
        add column attempt integer not null default 0`.execute(db);
      await sql`update ${table} set
        generation = coalesce((status->>'generation')::integer, 0),
        attempt = coalesce((status->>'attempt')::integer, 0)
        where status->>'generation' is not null or coalesce((status->>'attempt')::integer, 0) <> 0`.execute(db);
    },
  };
}
