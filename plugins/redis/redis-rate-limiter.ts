import type { Rate, RateDecision, RateLimiter } from '../../sdk/contracts/index.js';
import { ConfigError } from '../../sdk/errors.js';
import { LuaScripts } from './lua-scripts.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisConnectionOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';

/**
 * The RateLimiter contract on Redis: a token bucket per key in a hash, refilled and taken from in
 * one Lua call on the server's clock, so every worker shares it.
 */
export class RedisRateLimiter extends RedisService implements RateLimiter {
  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection) {
    super(connection, 'RedisRateLimiter');
  }

  /** Connects to `url` and returns a limiter that owns its connection. */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisRateLimiter> {
    return RedisService.openWith(url, options, 'RedisRateLimiter', (connection) => new RedisRateLimiter(connection));
  }

  async acquire(key: string, rate: Rate, tokens = 1): Promise<RateDecision> {
    this.assertOpen();
    if (!(rate.limit > 0) || !(rate.intervalMs > 0)) {
      throw new ConfigError(`rate for "${key}" must have a positive limit and intervalMs (got ${JSON.stringify(rate)})`);
    }
    const [allowed, retryAfterMs, remaining] = (await LuaScripts.call(
      this.client,
      'rate-acquire',
      [`${this.connection.namespace}:rate:${key}`],
      [rate.limit, rate.intervalMs, tokens],
    )) as [number, number, number];
    return { allowed: allowed === 1, retryAfterMs, remaining };
  }
}
