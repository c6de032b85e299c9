import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A chord claim records its claimer, a lease and whether the callback was fired, so a claim whose
 * claimer died before firing can be taken over once its lease ends. Existing claims get no lease
 * (`lease_ends_at` null): they hold until they expire, as they did when they were made.
 * Released: never change this file; add a new dated migration.
 */
export function chordLeases(schema: string): Migration {
  const table = sql.table(`${schema}.stem_chords`);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`alter table ${table}
        add column claimer text not null default '',
        add column lease_ends_at timestamptz,
        add column fired boolean not null default false`.execute(db);
    },
  };
}
