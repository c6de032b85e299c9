import { sql } from 'kysely';
import type { ScheduleEntry, ScheduleStore } from '../../sdk/contracts/schedule-store.js';
import { StaleVersionError } from '../../sdk/errors.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';

/**
 * The Postgres schedule store: one row per entry with an optimistic version. A write names the
 * version it read: `INSERT … ON CONFLICT DO NOTHING` for version 0, `UPDATE … WHERE version = $expected`
 * otherwise; no row written means someone else wrote first (StaleVersionError).
 */
export class PostgresScheduleStore extends PostgresService implements ScheduleStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres schedule store');
  }

  /** Stores the entry with version + 1 if its version is the stored one; else StaleVersionError. */
  async upsert(entry: ScheduleEntry): Promise<ScheduleEntry> {
    this.assertOpen();
    const stored: ScheduleEntry = { ...structuredClone(entry), version: entry.version + 1 };
    const values = {
      entry: JSON.stringify(stored),
      enabled: stored.enabled === true,
      next_run_at: stored.nextRunAt ?? null,
      version: stored.version,
    };
    const db = this.connection.db;
    const written = await this.connection.run(() =>
      entry.version === 0
        ? db
            .insertInto('stem_schedules')
            .values({ namespace: this.namespace, id: entry.id, ...values })
            .onConflict((oc) => oc.columns(['namespace', 'id']).doNothing())
            .returning('version')
            .executeTakeFirst()
        : db
            .updateTable('stem_schedules')
            .set(values)
            .where('namespace', '=', this.namespace)
            .where('id', '=', entry.id)
            .where('version', '=', entry.version)
            .returning('version')
            .executeTakeFirst(),
    );
    if (written === undefined) {
      const current = await this.get(entry.id);
      throw new StaleVersionError('schedule entry', entry.id, entry.version, current?.version ?? 0);
    }
    return structuredClone(stored);
  }

  /** One entry, or null. */
  async get(id: string): Promise<ScheduleEntry | null> {
    this.assertOpen();
    const row = await this.connection.run(() =>
      this.connection.db
        .selectFrom('stem_schedules')
        .select('entry')
        .where('namespace', '=', this.namespace)
        .where('id', '=', id)
        .executeTakeFirst(),
    );
    return row === undefined ? null : (row.entry as ScheduleEntry);
  }

  /** Every entry, by id (code-unit order). */
  async list(): Promise<ScheduleEntry[]> {
    this.assertOpen();
    const rows = await this.connection.run(() =>
      this.connection.db
        .selectFrom('stem_schedules')
        .select('entry')
        .where('namespace', '=', this.namespace)
        .orderBy(sql`id collate "C"`)
        .execute(),
    );
    return rows.map((row) => row.entry as ScheduleEntry);
  }

  /** Deletes an entry; false when there was none. */
  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.connection.run(() =>
      this.connection.db.deleteFrom('stem_schedules').where('namespace', '=', this.namespace).where('id', '=', id).executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  /** Enabled entries with nextRunAt at or before `now`, soonest first (then by id), at most `limit`. */
  async due(now: number, limit?: number): Promise<ScheduleEntry[]> {
    this.assertOpen();
    if (limit !== undefined && !(limit > 0)) return [];
    const rows = await this.connection.run(() => {
      let query = this.connection.db
        .selectFrom('stem_schedules')
        .select('entry')
        .where('namespace', '=', this.namespace)
        .where('enabled', '=', true)
        .where('next_run_at', '<=', sql<string>`${now}::float8`)
        .orderBy('next_run_at')
        .orderBy(sql`id collate "C"`);
      if (limit !== undefined && Number.isFinite(limit)) query = query.limit(Math.floor(limit));
      return query.execute();
    });
    return rows.map((row) => row.entry as ScheduleEntry);
  }
}
