import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Per-key concurrency (docs/flow-control.md). Each message row carries its concurrency key as a
 * virtual generated column read from the envelope's `stem-concurrency-key` header (parsed only when
 * the payload mentions it, and never failing on a payload that is not JSON), so the publish path
 * writes nothing new; the index below stores it. A partial index lists a key's rows in enqueue
 * order, and the claim index now lists unkeyed rows only, so a claim of unkeyed rows never walks
 * past a backlog of keyed rows waiting for their turn. `stem_concurrency_limits` holds run-time
 * limits set with `stem worker concurrency-limit`. Released: never change this file.
 */
export const concurrencyKeys: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await sql`alter table stem_messages add column concurrency_key text generated always as (
      case when instr(payload, '"stem-concurrency-key"') > 0 and json_valid(payload)
        then nullif(json_extract(payload, '$.headers."stem-concurrency-key"'), '') end
    ) virtual`.execute(db);
    await sql`create index stem_messages_keyed on stem_messages (namespace, queue, concurrency_key, id)
      where concurrency_key is not null`.execute(db);
    await sql`drop index stem_messages_claim`.execute(db);
    await sql`create index stem_messages_claim on stem_messages (namespace, queue, subscriber, priority desc, id)
      where concurrency_key is null`.execute(db);
    await sql`create table stem_concurrency_limits (
      namespace text not null,
      queue text not null,
      key text not null,
      limit_value integer not null check (limit_value >= 1),
      primary key (namespace, queue, key)
    ) without rowid`.execute(db);
  },
};
