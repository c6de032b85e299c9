import type { RevokeEntry, RevokeStore } from '../../sdk/contracts/index.js';
import { tagPart } from './key-part.js';
import { LuaScripts } from './lua-scripts.js';
import { execPipeline, type RedisConnection } from './redis-connection.js';
import type { RedisConnectionOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';

/**
 * The RevokeStore contract on Redis: per control namespace, a hash of entries, a zset by version
 * (for list since a version) and a zset by expiry (for prune); upserts compare versions in Lua.
 */
export class RedisRevokeStore extends RedisService implements RevokeStore {
  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection) {
    super(connection, 'RedisRevokeStore');
  }

  /** Connects to `url` and returns a store that owns its connection. */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisRevokeStore> {
    return RedisService.openWith(url, options, 'RedisRevokeStore', (connection) => new RedisRevokeStore(connection));
  }

  async upsert(entries: readonly RevokeEntry[]): Promise<RevokeEntry[]> {
    this.assertOpen();
    const byNamespace = new Map<string, RevokeEntry[]>();
    for (const entry of entries) {
      let list = byNamespace.get(entry.namespace);
      if (list === undefined) byNamespace.set(entry.namespace, (list = []));
      list.push(entry);
    }
    const groups = [...byNamespace.entries()];
    const pipeline = this.client.pipeline();
    for (const [namespace, list] of groups) {
      const args = list.flatMap((entry) => [entry.taskId, entry.version, JSON.stringify(entry), entry.expiresAt ?? '']);
      LuaScripts.queue(this.client, pipeline, 'revoke-upsert', this.keys(namespace), args);
    }
    const replies = (await execPipeline(pipeline)) as number[][];
    const applied = new Set<RevokeEntry>();
    groups.forEach(([, list], i) => {
      for (const position of replies[i]!) applied.add(list[position - 1]!);
    });
    return entries.filter((entry) => applied.has(entry));
  }

  async get(namespace: string, taskId: string): Promise<RevokeEntry | null> {
    this.assertOpen();
    const raw = await this.client.hget(this.keys(namespace)[0], taskId);
    return raw === null ? null : (JSON.parse(raw) as RevokeEntry);
  }

  async list(namespace: string, options: { sinceVersion?: number } = {}): Promise<RevokeEntry[]> {
    this.assertOpen();
    const [entries, versions] = this.keys(namespace);
    const min = options.sinceVersion === undefined ? '-inf' : `(${options.sinceVersion}`;
    const ids = await this.client.zrangebyscore(versions, min, '+inf');
    if (ids.length === 0) return [];
    const raws = await this.client.hmget(entries, ...ids);
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as RevokeEntry);
  }

  async prune(namespace: string, now: number): Promise<number> {
    this.assertOpen();
    return (await LuaScripts.call(this.client, 'revoke-prune', this.keys(namespace), [now])) as number;
  }

  /** The control namespace closes the hash tag, so it is encoded like a queue name there. */
  private keys(namespace: string): [string, string, string] {
    const tag = `{${this.connection.namespace}:revokes:${tagPart(namespace)}}`;
    return [`${tag}:entries`, `${tag}:versions`, `${tag}:expiry`];
  }
}
