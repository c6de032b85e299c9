import { sql } from 'kysely';
import type { RevokeEntry, RevokeStore } from '../../sdk/contracts/revoke-store.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

interface RevokeRow {
  namespace: string;
  task_id: string;
  version: string;
  terminate: boolean;
  reason: string | null;
  revoked_at: string;
  expires_at: string | null;
}

/**
 * The Postgres revoke store: one row per (control namespace, task id), written with a versioned
 * upsert (`ON CONFLICT DO UPDATE … WHERE excluded.version > stored.version`), so that replicas
 * converge whatever order the writes arrive in.
 */
export class PostgresRevokeStore extends PostgresService implements RevokeStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres revoke store');
  }

  /** Applies entries whose version is above the stored one, in one statement; returns those applied, in order. */
  async upsert(entries: readonly RevokeEntry[]): Promise<RevokeEntry[]> {
    this.assertOpen();
    // Within the batch, an entry counts only if it raises the version of its id (as if applied in
    // order); the database gets the highest of each id, once (ON CONFLICT touches a row once).
    const candidates: RevokeEntry[] = [];
    const highest = new Map<string, RevokeEntry>();
    for (const entry of entries) {
      const key = keyOf(entry.namespace, entry.taskId);
      const top = highest.get(key);
      if (top !== undefined && top.version >= entry.version) continue;
      highest.set(key, entry);
      candidates.push(entry);
    }
    if (highest.size === 0) return [];
    const rows = [...highest.values()];
    const table = this.table('stem_revokes');
    const { rows: written } = await this.connection.run(() =>
      sql<{ namespace: string; task_id: string; prior_version: string | null }>`with input as (
          select * from unnest(${rows.map((e) => e.namespace)}::text[], ${rows.map((e) => e.taskId)}::text[],
            ${rows.map((e) => e.version)}::bigint[], ${rows.map((e) => e.terminate === true)}::boolean[],
            ${rows.map((e) => e.reason ?? null)}::text[], ${rows.map((e) => e.revokedAt)}::bigint[],
            ${rows.map((e) => e.expiresAt ?? null)}::bigint[])
            as i(namespace, task_id, version, terminate, reason, revoked_at, expires_at)
        ),
        prior as (
          select r.namespace, r.task_id, r.version from ${table} r join input i on r.namespace = i.namespace and r.task_id = i.task_id
        ),
        written as (
          insert into ${table} as r (namespace, task_id, version, terminate, reason, revoked_at, expires_at)
          select * from input
          on conflict (namespace, task_id) do update
            set version = excluded.version, terminate = excluded.terminate, reason = excluded.reason,
                revoked_at = excluded.revoked_at, expires_at = excluded.expires_at
            where excluded.version > r.version
          returning r.namespace, r.task_id
        )
        select w.namespace, w.task_id, p.version as prior_version
        from written w left join prior p on p.namespace = w.namespace and p.task_id = w.task_id`.execute(this.connection.db),
    );
    const prior = new Map(
      written.map((row) => [keyOf(row.namespace, row.task_id), row.prior_version === null ? -Infinity : Number(row.prior_version)]),
    );
    return candidates
      .filter((entry) => {
        const before = prior.get(keyOf(entry.namespace, entry.taskId));
        return before !== undefined && entry.version > before;
      })
      .map((entry) => ({ ...entry }));
  }

  /** One entry, or null. */
  async get(namespace: string, taskId: string): Promise<RevokeEntry | null> {
    this.assertOpen();
    const row = await this.connection.run(() =>
      this.connection.db
        .selectFrom('stem_revokes')
        .selectAll()
        .where('namespace', '=', namespace)
        .where('task_id', '=', taskId)
        .executeTakeFirst(),
    );
    return row === undefined ? null : toEntry(row);
  }

  /** A namespace's entries by version (then task id), only those above `sinceVersion` if given. */
  async list(namespace: string, options: { sinceVersion?: number } = {}): Promise<RevokeEntry[]> {
    this.assertOpen();
    const rows = await this.connection.run(() => {
      let query = this.connection.db.selectFrom('stem_revokes').selectAll().where('namespace', '=', namespace);
      if (options.sinceVersion !== undefined) query = query.where('version', '>', sql<string>`${options.sinceVersion}::float8`);
      return query.orderBy('version').orderBy(sql`task_id collate "C"`).execute();
    });
    return rows.map(toEntry);
  }

  /** Deletes the namespace's entries that expired at or before `now`; returns how many. */
  async prune(namespace: string, now: number): Promise<number> {
    this.assertOpen();
    const result = await this.connection.run(() =>
      this.connection.db
        .deleteFrom('stem_revokes')
        .where('namespace', '=', namespace)
        .where('expires_at', 'is not', null)
        .where('expires_at', '<=', sql<string>`${now}::float8`)
        .executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }
}

function keyOf(namespace: string, taskId: string): string {
  return `${namespace}\u0000${taskId}`;
}

function toEntry(row: RevokeRow): RevokeEntry {
  const entry: RevokeEntry = {
    namespace: row.namespace,
    taskId: row.task_id,
    version: Number(row.version),
    terminate: row.terminate,
    revokedAt: Number(row.revoked_at),
  };
  if (row.reason !== null) entry.reason = row.reason;
  if (row.expires_at !== null) entry.expiresAt = Number(row.expires_at);
  return entry;
}
