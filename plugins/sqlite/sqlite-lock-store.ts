import type { LockStore } from '../../sdk/contracts/lock-store.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

/** The SQLite lock store: a row per key with its owner and expiry; each call is one statement. */
export class SqliteLockStore extends SqliteService implements LockStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite lock store');
  }

  /** Takes `key` when nobody (the same owner included) holds it. */
  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = Date.now();
    const row = this.connection
      .prepare(
        `insert into stem_locks (namespace, key, owner, expires_at) values (?, ?, ?, ?)
        on conflict (namespace, key) do update set owner = excluded.owner, expires_at = excluded.expires_at where stem_locks.expires_at <= ?
        returning 1`,
      )
      .get(this.namespace, key, owner, now + ttl(ttlMs), now);
    return row !== undefined;
  }

  /** Who holds `key`, or null. */
  async owner(key: string): Promise<string | null> {
    this.assertOpen();
    const owner = this.connection
      .prepare('select owner from stem_locks where namespace = ? and key = ? and expires_at > ?')
      .pluck()
      .get(this.namespace, key, Date.now()) as string | undefined;
    return owner ?? null;
  }

  /** Extends the lock to `ttlMs` from now if `owner` still holds it. */
  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = Date.now();
    return (
      this.connection
        .prepare('update stem_locks set expires_at = ? where namespace = ? and key = ? and owner = ? and expires_at > ?')
        .run(now + ttl(ttlMs), this.namespace, key, owner, now).changes > 0
    );
  }

  /** Releases the lock if `owner` holds it. */
  async release(key: string, owner: string): Promise<boolean> {
    this.assertOpen();
    return (
      this.connection
        .prepare('delete from stem_locks where namespace = ? and key = ? and owner = ? and expires_at > ?')
        .run(this.namespace, key, owner, Date.now()).changes > 0
    );
  }
}

function ttl(ttlMs: number): number {
  return Math.max(0, Math.round(ttlMs));
}
