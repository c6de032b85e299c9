import type { RevokeEntry, RevokeStore } from '../../sdk/contracts/revoke-store.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

interface RevokeRow {
  namespace: string;
  task_id: string;
  version: number;
  terminate: number;
  reason: string | null;
  revoked_at: number;
  expires_at: number | null;
}

/**
 * The SQLite revoke store: one row per (control namespace, task id), written with a versioned
 * upsert (`ON CONFLICT DO UPDATE … WHERE excluded.version > version`), so that writers converge
 * whatever order their writes arrive in.
 */
export class SqliteRevokeStore extends SqliteService implements RevokeStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite revoke store');
  }

  /** Applies entries whose version is above the stored one, in one transaction; returns those applied, in order. */
  async upsert(entries: readonly RevokeEntry[]): Promise<RevokeEntry[]> {
    this.assertOpen();
    if (entries.length === 0) return [];
    const write = this.connection.prepare(
      `insert into stem_revokes (namespace, task_id, version, terminate, reason, revoked_at, expires_at) values (?, ?, ?, ?, ?, ?, ?)
      on conflict (namespace, task_id) do update set version = excluded.version, terminate = excluded.terminate, reason = excluded.reason,
        revoked_at = excluded.revoked_at, expires_at = excluded.expires_at
      where excluded.version > stem_revokes.version
      returning task_id`,
    );
    return this.connection.immediate(() =>
      entries
        .filter(
          (entry) =>
            write.get(
              entry.namespace,
              entry.taskId,
              entry.version,
              entry.terminate === true ? 1 : 0,
              entry.reason ?? null,
              entry.revokedAt,
              entry.expiresAt ?? null,
            ) !== undefined,
        )
        .map((entry) => ({ ...entry })),
    );
  }

  /** One entry, or null. */
  async get(namespace: string, taskId: string): Promise<RevokeEntry | null> {
    this.assertOpen();
    const row = this.connection.prepare('select * from stem_revokes where namespace = ? and task_id = ?').get(namespace, taskId) as
      | RevokeRow
      | undefined;
    return row === undefined ? null : toEntry(row);
  }

  /** A namespace's entries by version (then task id), only those above `sinceVersion` if given. */
  async list(namespace: string, options: { sinceVersion?: number } = {}): Promise<RevokeEntry[]> {
    this.assertOpen();
    const rows = this.connection
      .prepare('select * from stem_revokes where namespace = ? and version > ? order by version, task_id')
      .all(namespace, options.sinceVersion ?? Number.MIN_SAFE_INTEGER) as RevokeRow[];
    return rows.map(toEntry);
  }

  /** Deletes the namespace's entries that expired at or before `now`; returns how many. */
  async prune(namespace: string, now: number): Promise<number> {
    this.assertOpen();
    return this.connection
      .prepare('delete from stem_revokes where namespace = ? and expires_at is not null and expires_at <= ?')
      .run(namespace, now).changes;
  }
}

function toEntry(row: RevokeRow): RevokeEntry {
  const entry: RevokeEntry = {
    namespace: row.namespace,
    taskId: row.task_id,
    version: row.version,
    terminate: row.terminate === 1,
    revokedAt: row.revoked_at,
  };
  if (row.reason !== null) entry.reason = row.reason;
  if (row.expires_at !== null) entry.expiresAt = row.expires_at;
  return entry;
}
