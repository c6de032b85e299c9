import type { ScheduleEntry, ScheduleStore } from '../../sdk/contracts/index.js';
import { StaleVersionError } from '../../sdk/errors.js';
import { LuaScripts } from './lua-scripts.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisConnectionOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';

/**
 * The ScheduleStore contract on Redis: entries in a hash, versions in another (compare-and-set in
 * Lua), and a zset of enabled entries by nextRunAt for `due`.
 */
export class RedisScheduleStore extends RedisService implements ScheduleStore {
  private readonly keys: [entries: string, versions: string, due: string];

  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection) {
    super(connection, 'RedisScheduleStore');
    const tag = `{${connection.namespace}:schedules}`;
    this.keys = [`${tag}:entries`, `${tag}:versions`, `${tag}:due`];
  }

  /** Connects to `url` and returns a store that owns its connection. */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisScheduleStore> {
    return RedisService.openWith(url, options, 'RedisScheduleStore', (connection) => new RedisScheduleStore(connection));
  }

  async upsert(entry: ScheduleEntry): Promise<ScheduleEntry> {
    this.assertOpen();
    const stored: ScheduleEntry = { ...entry, version: entry.version + 1 };
    const dueAt = entry.enabled && entry.nextRunAt !== undefined ? entry.nextRunAt : '';
    const [written, version] = (await LuaScripts.call(this.client, 'schedule-upsert', this.keys, [
      entry.id,
      entry.version,
      JSON.stringify(stored),
      dueAt,
    ])) as [number, number];
    if (written !== 1) throw new StaleVersionError('schedule', entry.id, entry.version, version);
    return stored;
  }

  async get(id: string): Promise<ScheduleEntry | null> {
    this.assertOpen();
    const raw = await this.client.hget(this.keys[0], id);
    return raw === null ? null : (JSON.parse(raw) as ScheduleEntry);
  }

  async list(): Promise<ScheduleEntry[]> {
    this.assertOpen();
    const entries = (await this.client.hvals(this.keys[0])).map((raw) => JSON.parse(raw) as ScheduleEntry);
    return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    return (await LuaScripts.call(this.client, 'schedule-remove', this.keys, [id])) === 1;
  }

  async due(now: number, limit?: number): Promise<ScheduleEntry[]> {
    this.assertOpen();
    if (limit !== undefined && limit <= 0) return [];
    const ids =
      limit === undefined
        ? await this.client.zrangebyscore(this.keys[2], '-inf', now)
        : await this.client.zrangebyscore(this.keys[2], '-inf', now, 'LIMIT', 0, limit);
    if (ids.length === 0) return [];
    const raws = await this.client.hmget(this.keys[0], ...ids);
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as ScheduleEntry);
  }
}
