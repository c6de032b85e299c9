import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Durable workflows (plugins/workflows): runs, their checkpoints (one row per position), the
 * waiters of suspended runs per (event, key), and events emitted before anyone waited, kept until
 * `expires_at`. User values are `json` (kept as written); times are epoch ms. Released: never
 * change this file; add a new dated migration.
 */
export function workflowTables(schema: string): Migration {
  const table = (name: string) => sql.table(`${schema}.${name}`);
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`create table ${table('stem_workflow_runs')} (
        namespace text not null,
        id text not null,
        workflow text not null,
        version integer not null,
        queue text,
        status text not null,
        input json,
        result json,
        error json,
        wake_at bigint,
        waiting json,
        lease_owner text,
        lease_until bigint,
        rewinds integer not null default 0,
        created_at bigint not null,
        updated_at bigint not null,
        finished_at bigint,
        primary key (namespace, id)
      )`.execute(db);
      await sql`create index stem_workflow_runs_recent on ${table('stem_workflow_runs')} (namespace, created_at desc, id desc)`.execute(db);
      await sql`create table ${table('stem_workflow_checkpoints')} (
        namespace text not null,
        run_id text not null,
        position integer not null,
        checkpoint json not null,
        primary key (namespace, run_id, position)
      )`.execute(db);
      await sql`create table ${table('stem_workflow_waiters')} (
        namespace text not null,
        event text not null,
        key text not null,
        run_id text not null,
        primary key (namespace, event, key, run_id)
      )`.execute(db);
      await sql`create table ${table('stem_workflow_events')} (
        seq bigserial primary key,
        namespace text not null,
        event text not null,
        key text not null,
        payload json,
        expires_at bigint not null
      )`.execute(db);
      await sql`create index stem_workflow_events_pair on ${table('stem_workflow_events')} (namespace, event, key, seq)`.execute(db);
    },
  };
}
