import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Per-key concurrency (docs/flow-control.md). Each message row carries its concurrency key and
 * limit as generated columns read from the envelope's `stem-concurrency-key` /
 * `stem-concurrency-limit` headers (parsed only when the payload mentions them, and never failing
 * on a payload that is not an envelope), so the publish path writes nothing new. A partial index
 * lists a key's rows in enqueue order, and the claim index now lists unkeyed rows only; a claim
 * never changes an indexed column, so claims stay HOT updates. `stem_concurrency_limits` holds run-time limits set with
 * `stem worker concurrency-limit`. Released: never change this file; add a new dated migration.
 */
export function concurrencyKeys(schema: string): Migration {
  const table = (name: string) => sql.table(`${schema}.${name}`);
  const fn = sql.id(schema, 'stem_envelope_header');
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`create function ${fn}(payload text, header text) returns text
        language plpgsql immutable parallel safe as $$
        begin
          return (payload::json -> 'headers') ->> header;
        exception when others then
          return null;
        end $$`.execute(db);
      await sql`alter table ${table('stem_messages')}
        add column concurrency_key text generated always as (
          case when strpos(payload, '"stem-concurrency-key"') > 0 then ${fn}(payload, 'stem-concurrency-key') end
        ) stored,
        add column concurrency_limit integer generated always as (
          case when strpos(payload, '"stem-concurrency-limit"') > 0
            and ${fn}(payload, 'stem-concurrency-limit') ~ '^[0-9]{1,9}$'
          then greatest(1, ${fn}(payload, 'stem-concurrency-limit')::integer) end
        ) stored`.execute(db);
      await sql`create index stem_messages_keyed on ${table('stem_messages')} (namespace, queue, concurrency_key, id)
        where concurrency_key is not null`.execute(db);
      // The claim index lists unkeyed rows only: a claim of unkeyed rows never walks past a backlog
      // of keyed rows waiting for their turn (those are found through stem_messages_keyed).
      await sql`drop index if exists ${sql.id(schema, 'stem_messages_claim')}`.execute(db);
      await sql`create index stem_messages_claim on ${table('stem_messages')} (namespace, queue, subscriber, priority desc, id)
        where concurrency_key is null`.execute(db);
      await sql`create table ${table('stem_concurrency_limits')} (
        namespace text not null,
        queue text not null,
        key text not null,
        limit_value integer not null check (limit_value >= 1),
        primary key (namespace, queue, key)
      )`.execute(db);
    },
  };
}
