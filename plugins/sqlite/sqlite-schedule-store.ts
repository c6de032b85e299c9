import type { ScheduleEntry, ScheduleStore } from '../../sdk/contracts/schedule-store.js';
import { StaleVersionError } from '../../sdk/errors.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';

/**
 * The SQLite schedule store: one row per entry with an optimistic version. A write names the
 * version it read: an insert that does nothing on conflict for version 0, an update
 * `WHERE version = expected` otherwise; no row written means someone else wrote first.
 */
export class SqliteScheduleStore extends SqliteService implements ScheduleStore {
  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite schedule store');
  }

  /** Stores the entry with version + 1 if its version is the stored one; else StaleVersionError. */
  async upsert(entry: ScheduleEntry): Promise<ScheduleEntry> {
    this.assertOpen();
    const stored: ScheduleEntry = { ...structuredClone(entry), version: entry.version + 1 };
    const json = JSON.stringify(stored);
    const enabled = stored.enabled === true ? 1 : 0;
    const next = stored.nextRunAt ?? null;
    const written =
      entry.version === 0
        ? this.connection
            .prepare(
              'insert into stem_schedules (namespace, id, entry, enabled, next_run_at, version) values (?, ?, ?, ?, ?, ?) on ' +
                'conflict do nothing',
            )
            .run(this.namespace, entry.id, json, enabled, next, stored.version).changes
        : this.connection
            .prepare(
              'update stem_schedules set entry = ?, enabled = ?, next_run_at = ?, version = ? where namespace = ? and id = ? and ' +
                'version = ?',
            )
            .run(json, enabled, next, stored.version, this.namespace, entry.id, entry.version).changes;
    if (written === 0) {
      const current = await this.get(entry.id);
      throw new StaleVersionError('schedule entry', entry.id, entry.version, current?.version ?? 0);
    }
    return structuredClone(stored);
  }

  /** One entry, or null. */
  async get(id: string): Promise<ScheduleEntry | null> {
    this.assertOpen();
    const entry = this.connection
      .prepare('select entry from stem_schedules where namespace = ? and id = ?')
      .pluck()
      .get(this.namespace, id) as string | undefined;
    return entry === undefined ? null : (JSON.parse(entry) as ScheduleEntry);
  }

  /** Every entry, by id (binary order). */
  async list(): Promise<ScheduleEntry[]> {
    this.assertOpen();
    const rows = this.connection
      .prepare('select entry from stem_schedules where namespace = ? order by id')
      .pluck()
      .all(this.namespace) as string[];
    return rows.map((entry) => JSON.parse(entry) as ScheduleEntry);
  }

  /** Deletes an entry; false when there was none. */
  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    return this.connection.prepare('delete from stem_schedules where namespace = ? and id = ?').run(this.namespace, id).changes > 0;
  }

  /** Enabled entries with nextRunAt at or before `now`, soonest first (then by id), at most `limit`. */
  async due(now: number, limit?: number): Promise<ScheduleEntry[]> {
    this.assertOpen();
    if (limit !== undefined && !(limit > 0)) return [];
    const rows = this.connection
      .prepare('select entry from stem_schedules where namespace = ? and enabled = 1 and next_run_at <= ? order by next_run_at, id limit ?')
      .pluck()
      .all(this.namespace, now, limit !== undefined && Number.isFinite(limit) ? Math.floor(limit) : -1) as string[];
    return rows.map((entry) => JSON.parse(entry) as ScheduleEntry);
  }
}
