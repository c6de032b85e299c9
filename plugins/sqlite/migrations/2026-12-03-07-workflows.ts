import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Durable workflows (plugins/workflows): runs (the engine's fields as JSON in `meta`, the user's
 * input and result as JSON text, never rewritten), checkpoints (one row per position), waiters per
 * (event, key), and events emitted before anyone waited, kept until `expires_at` (epoch ms).
 * Released: never change this file.
 */
export const workflowTables: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    await sql`create table stem_workflow_runs (
      namespace text not null,
      id text not null,
      workflow text not null,
      status text not null,
      created_at integer not null,
      meta text not null,
      input text,
      result text,
      primary key (namespace, id)
    )`.execute(db);
    await sql`create index stem_workflow_runs_recent on stem_workflow_runs (namespace, created_at, id)`.execute(db);
    await sql`create table stem_workflow_checkpoints (
      namespace text not null,
      run_id text not null,
      position integer not null,
      checkpoint text not null,
      primary key (namespace, run_id, position)
    )`.execute(db);
    await sql`create table stem_workflow_waiters (
      namespace text not null,
      event text not null,
      key text not null,
      run_id text not null,
      primary key (namespace, event, key, run_id)
    )`.execute(db);
    await sql`create index stem_workflow_waiters_run on stem_workflow_waiters (namespace, run_id)`.execute(db);
    await sql`create table stem_workflow_events (
      seq integer primary key autoincrement,
      namespace text not null,
      event text not null,
      key text not null,
      payload text not null,
      expires_at integer not null
    )`.execute(db);
    await sql`create index stem_workflow_events_pair on stem_workflow_events (namespace, event, key, seq)`.execute(db);
  },
};
