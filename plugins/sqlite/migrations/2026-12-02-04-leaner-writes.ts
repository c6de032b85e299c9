import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Fewer pages written per enqueue (each page a WAL frame of its own in every commit): messages
 * without AUTOINCREMENT (no sqlite_sequence row to update; a receipt stays unique because a claim
 * now draws its lease at random), the index of delayed messages only on delayed rows, the results
 * clustered by their key (WITHOUT ROWID: one b-tree, not a table and its key index), and their
 * expiry index only on final states (the others are swept by key, a slice at a time). Released:
 * never change this file.
 */
export const leanerWrites: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await sql`create table stem_messages_next (
      id integer primary key,
      namespace text not null,
      queue text not null,
      subscriber text not null default '',
      task_id text not null,
      priority integer not null default 0,
      payload text not null,
      visibility_ms integer not null,
      not_before integer not null,
      locked_until integer,
      locked_by text,
      deliveries integer not null default 0,
      lease integer not null default 0,
      created_at integer not null
    )`.execute(db);
    await sql`insert into stem_messages_next select id, namespace, queue, subscriber, task_id, priority, payload, visibility_ms, not_before,
      locked_until, locked_by, deliveries, lease, created_at from stem_messages`.execute(db);
    await sql`drop table stem_messages`.execute(db);
    await sql`alter table stem_messages_next rename to stem_messages`.execute(db);
    await sql`delete from sqlite_sequence where name = 'stem_messages'`.execute(db);
    await sql`create index stem_messages_claim on stem_messages (namespace, queue, subscriber, priority desc, id)`.execute(db);
    // Only rows published to run later (or put back with a delay): a row due at once never needs it.
    await sql`create index stem_messages_delayed on stem_messages (namespace, queue, not_before) where not_before > created_at`.execute(db);
    await sql`create index stem_messages_leased on stem_messages (namespace, queue, locked_until) where locked_until is not null`.execute(
      db,
    );

    await sql`create table stem_results_next (
      namespace text not null,
      id text not null,
      state text not null,
      generation integer not null default 0,
      attempt integer not null default 0,
      phase integer not null,
      status text not null,
      expires_at integer not null,
      primary key (namespace, id)
    ) without rowid`.execute(db);
    await sql`insert into stem_results_next
      select namespace, id, state, generation, attempt, phase, status, expires_at from stem_results`.execute(db);
    await sql`drop table stem_results`.execute(db);
    await sql`alter table stem_results_next rename to stem_results`.execute(db);
    // Final states (phase 3 in sdk/state-order.ts when this was written) are the ones that pile up.
    await sql`create index stem_results_expiry on stem_results (expires_at) where phase >= 3`.execute(db);
  },
};
