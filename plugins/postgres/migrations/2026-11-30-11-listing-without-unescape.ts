import { sql, type Kysely, type Migration, type RawBuilder } from 'kysely';

/**
 * `doc` (JSON text) with every `\u0000` and every escaped UTF-16 surrogate turned into plain text
 * (`\\u0000`), so that the server can parse it into `text`: `->>` and `->` unescape every string of
 * the document they walk, and Postgres text has no NUL and no lone surrogate. Escaped backslashes
 * are first written as `\u005c` (the same character), so that `\\u0000` (a backslash, then `u0000`)
 * is not taken for an escape. Only the strings that held such a character read differently, and
 * JSON.stringify never escapes a paired surrogate.
 */
function defanged(doc: string): RawBuilder<string> {
  // String.raw: every backslash here is one of the SQL text.
  return sql.raw(String.raw`regexp_replace(replace(${doc}, '\\', '\u005c'), '\\u(0000|[dD][89abcdefABCDEF])', '\\\\u\1', 'g')`);
}

/**
 * Values holding NUL or an unpaired surrogate (#20). Migration 08 indexed
 * `(status->>'updatedAt')::numeric`, which made the server unescape every state it wrote: one whose
 * result, error or arguments held `\u0000` or `\ud800` was refused. The listing index now reads a
 * plain `updated_at` column, which every state write sets from its own parameter (no JSON is parsed
 * by the server on a write); existing rows are backfilled. `stem_json_field(doc, key)` reads a
 * field of JSON text without failing on such values (the listing's name and queue filters, the
 * `updatedAt` of a queued state kept in a message row), and `stem_envelope_header` reads a
 * concurrency key the same way: before, a payload holding NUL lost its key silently (the function
 * caught the error and returned null); such rows are computed again. Released: never change this
 * file; add a new dated migration.
 */
export function listingWithoutUnescape(schema: string): Migration {
  const table = (name: string) => sql.table(`${schema}.${name}`);
  const field = sql.id(schema, 'stem_json_field');
  const header = sql.id(schema, 'stem_envelope_header');
  return {
    async up(db: Kysely<any>): Promise<void> {
      // A plain SQL expression, so the planner inlines it; the fast branch is the common case.
      await sql`create function ${field}(doc text, key text) returns text
        language sql immutable parallel safe strict as $$
          select case when strpos(doc, '\\u') = 0 then doc::json ->> key else ${defanged('doc')}::json ->> key end
        $$`.execute(db);
      await sql`create or replace function ${header}(payload text, header text) returns text
        language plpgsql immutable parallel safe as $$
        begin
          return ((case when strpos(payload, '\\u') = 0 then payload else ${defanged('payload')} end)::json -> 'headers') ->> header;
        exception when others then
          return null;
        end $$`.execute(db);
      // Rows whose key the old function lost: an update computes the generated columns again.
      await sql`update ${table('stem_messages')} set payload = payload
        where concurrency_key is null and strpos(payload, '"stem-concurrency-key"') > 0`.execute(db);

      await sql`drop index if exists ${sql.id(schema, 'stem_results_listing')}`.execute(db);
      // A constant default: no table rewrite; a writer that predates this migration leaves 0 (listed last).
      await sql`alter table ${table('stem_results')} add column updated_at float8 not null default 0`.execute(db);
      await sql`update ${table('stem_results')} set updated_at = coalesce(${field}(status::text, 'updatedAt')::float8, 0)`.execute(db);
      await sql`create index ${sql.id('stem_results_listing')} on ${table('stem_results')}
        (namespace, state, updated_at, (id collate "C")) where state <> 'queued'`.execute(db);
    },
  };
}
