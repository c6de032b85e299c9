import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Lets a claim, a lease renewal and a state change update their row in place (a HOT update: no
 * index entry written). Postgres can do that only when no index covers a changed column, its
 * predicate included, and the row's page has room. So: the lease indexes go (a claim finds
 * expired leases through the claim index; an idle consumer re-polls instead of computing the
 * next lease expiry), delayed rows get a partial index on columns a claim never changes, and both
 * hot tables leave room on each page. Released: never change this file; add a new dated migration.
 */
export function hotUpdates(schema: string): Migration {
  const table = (name: string) => sql.table(`${schema}.${name}`);
  const index = (name: string) => sql.id(schema, name);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`drop index if exists ${index('stem_messages_leased')}`.execute(db);
      await sql`drop index if exists ${index('stem_messages_delayed')}`.execute(db);
      // A delayed row is one whose not_before was set later than its creation (enqueue writes both as now()).
      await sql`create index stem_messages_delayed_due on ${table('stem_messages')} (namespace, queue, not_before)
        where not_before > created_at`.execute(db);
      await sql`alter table ${table('stem_messages')} set (fillfactor = 50)`.execute(db);
      await sql`alter table ${table('stem_results')} set (fillfactor = 70)`.execute(db);
    },
  };
}
