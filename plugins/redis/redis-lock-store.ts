import type { LockStore } from '../../sdk/contracts/index.js';
import { LuaScripts } from './lua-scripts.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisConnectionOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';

/** The LockStore contract on Redis: SET NX PX to take, Lua compare-owner scripts to renew and release. */
export class RedisLockStore extends RedisService implements LockStore {
  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection) {
    super(connection, 'RedisLockStore');
  }

  /** Connects to `url` and returns a store that owns its connection. */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisLockStore> {
    return RedisService.openWith(url, options, 'RedisLockStore', (connection) => new RedisLockStore(connection));
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    return (await this.client.set(this.key(key), owner, 'PX', ttl(ttlMs), 'NX')) === 'OK';
  }

  async owner(key: string): Promise<string | null> {
    this.assertOpen();
    return this.client.get(this.key(key));
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    return (await LuaScripts.call(this.client, 'lock-renew', [this.key(key)], [owner, ttl(ttlMs)])) === 1;
  }

  async release(key: string, owner: string): Promise<boolean> {
    this.assertOpen();
    return (await LuaScripts.call(this.client, 'lock-release', [this.key(key)], [owner])) === 1;
  }

  private key(name: string): string {
    return `${this.connection.namespace}:lock:${name}`;
  }
}

function ttl(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}
