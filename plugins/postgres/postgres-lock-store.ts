import { sql } from 'kysely';
import type { LockStore } from '../../sdk/contracts/lock-store.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

/**
 * The Postgres lock store: one row per key with its owner and `expires_at` (server clock). Each
 * call is one statement; an expired row counts as free and is taken over by the next acquire.
 */
export class PostgresLockStore extends PostgresService implements LockStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres lock store');
  }

  /** Takes `key` when nobody (the same owner included) holds it. */
  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql`insert into ${this.table('stem_locks')} as l (namespace, key, owner, expires_at)
        values (${this.namespace}, ${key}, ${owner}, now() + ${ttl(ttlMs)} * interval '1 millisecond')
        on conflict (namespace, key) do update set owner = excluded.owner, expires_at = excluded.expires_at
          where l.expires_at <= now()
        returning 1`.execute(this.connection.db),
    );
    return rows.length === 1;
  }

  /** Who holds `key`, or null. */
  async owner(key: string): Promise<string | null> {
    this.assertOpen();
    const row = await this.connection.run(() =>
      this.connection.db
        .selectFrom('stem_locks')
        .select('owner')
        .where('namespace', '=', this.namespace)
        .where('key', '=', key)
        .where('expires_at', '>', sql<Date>`now()`)
        .executeTakeFirst(),
    );
    return row?.owner ?? null;
  }

  /** Extends the lock to `ttlMs` from now if `owner` still holds it. */
  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const result = await this.connection.run(() =>
      this.connection.db
        .updateTable('stem_locks')
        .set({ expires_at: sql<string>`now() + ${ttl(ttlMs)} * interval '1 millisecond'` })
        .where('namespace', '=', this.namespace)
        .where('key', '=', key)
        .where('owner', '=', owner)
        .where('expires_at', '>', sql<Date>`now()`)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Releases the lock if `owner` holds it. */
  async release(key: string, owner: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.connection.run(() =>
      this.connection.db
        .deleteFrom('stem_locks')
        .where('namespace', '=', this.namespace)
        .where('key', '=', key)
        .where('owner', '=', owner)
        .where('expires_at', '>', sql<Date>`now()`)
        .executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }
}

function ttl(ttlMs: number): number {
  return Math.max(0, Math.round(ttlMs));
}
