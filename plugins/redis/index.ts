import { assertKnownOptions } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { RedisBroker } from './redis-broker.js';
import { RedisConnection } from './redis-connection.js';
import { RedisEventBus } from './redis-event-bus.js';
import { RedisLockStore } from './redis-lock-store.js';
import {
  REDIS_BROKER_OPTION_KEYS,
  REDIS_CONNECTION_OPTION_KEYS,
  REDIS_PLUGIN_OPTION_KEYS,
  REDIS_RESULT_BACKEND_OPTION_KEYS,
  resolveBrokerOptions,
  resolveConnectionOptions,
  resolveResultTtl,
  type RedisBrokerOptions,
  type RedisConnectionOptions,
  type RedisPluginOptions,
  type RedisResultBackendOptions,
} from './redis-options.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';
import { RedisResultBackend } from './redis-result-backend.js';
import { RedisRevokeStore } from './redis-revoke-store.js';
import { RedisScheduleStore } from './redis-schedule-store.js';
import { RedisWorkflowStore } from './redis-workflow-store.js';

export { RedisBroker } from './redis-broker.js';
export { RedisConnection } from './redis-connection.js';
export { RedisEventBus } from './redis-event-bus.js';
export { RedisLockStore } from './redis-lock-store.js';
export { RedisRateLimiter } from './redis-rate-limiter.js';
export { RedisResultBackend } from './redis-result-backend.js';
export { RedisRevokeStore } from './redis-revoke-store.js';
export { RedisScheduleStore } from './redis-schedule-store.js';
export { RedisWorkflowStore } from './redis-workflow-store.js';
export type { RedisBrokerOptions, RedisConnectionOptions, RedisPluginOptions, RedisResultBackendOptions } from './redis-options.js';

/** A closable service made over a connection. */
interface Closable {
  close(): Promise<void>;
}

/** A plugin that opens its own connection at apply, builds one service on it and provides it. */
function singleService<T extends Closable>(
  name: string,
  options: RedisConnectionOptions | undefined,
  provide: (connection: RedisConnection, stem: Parameters<StemPlugin['apply']>[0]) => T,
): StemPlugin {
  const resolved = resolveConnectionOptions(options, name);
  let service: T | undefined;
  return {
    name,
    async apply(stem) {
      const connection = await RedisConnection.open(resolved);
      service = provide(connection, stem);
      await connection.release();
    },
    async close() {
      await service?.close();
    },
  };
}

/**
 * Provides the Redis Streams broker, and the event bus over the same server's pub/sub:
 * `redisBroker({ url: 'redis://127.0.0.1:6379' })`.
 */
export function redisBroker(options: RedisBrokerOptions = {}): StemPlugin {
  assertKnownOptions('redisBroker()', options, REDIS_BROKER_OPTION_KEYS);
  resolveBrokerOptions(options, 'redisBroker');
  return singleService('redis-broker', options, (connection, stem) => {
    const broker = new RedisBroker(connection, options);
    const eventBus = new RedisEventBus(connection);
    stem.provide('broker', broker);
    stem.provide('eventBus', eventBus);
    return { close: async () => void (await Promise.all([eventBus.close(), broker.close()])) };
  });
}

/** Provides the Redis result backend (states with TTL, watches over pub/sub, groups, chords, heartbeats). */
export function redisResultBackend(options: RedisResultBackendOptions = {}): StemPlugin {
  assertKnownOptions('redisResultBackend()', options, REDIS_RESULT_BACKEND_OPTION_KEYS);
  resolveResultTtl(options, 'redisResultBackend');
  return singleService('redis-result-backend', options, (connection, stem) => {
    const backend = new RedisResultBackend(connection, options);
    stem.provide('backend', backend);
    return backend;
  });
}

/** Provides the Redis revoke store. */
export function redisRevokeStore(options: RedisConnectionOptions = {}): StemPlugin {
  assertKnownOptions('redisRevokeStore()', options, REDIS_CONNECTION_OPTION_KEYS);
  return singleService('redis-revoke-store', options, (connection, stem) => {
    const store = new RedisRevokeStore(connection);
    stem.provide('revokeStore', store);
    return store;
  });
}

/** Provides the Redis token-bucket rate limiter. */
export function redisRateLimiter(options: RedisConnectionOptions = {}): StemPlugin {
  assertKnownOptions('redisRateLimiter()', options, REDIS_CONNECTION_OPTION_KEYS);
  return singleService('redis-rate-limiter', options, (connection, stem) => {
    const limiter = new RedisRateLimiter(connection);
    stem.provide('rateLimiter', limiter);
    return limiter;
  });
}

/** Provides the Redis schedule store for Beat. */
export function redisScheduleStore(options: RedisConnectionOptions = {}): StemPlugin {
  assertKnownOptions('redisScheduleStore()', options, REDIS_CONNECTION_OPTION_KEYS);
  return singleService('redis-schedule-store', options, (connection, stem) => {
    const store = new RedisScheduleStore(connection);
    stem.provide('scheduleStore', store);
    return store;
  });
}

/** Provides the Redis workflow store (runs, checkpoints, waiters, early events) for plugins/workflows. */
export function redisWorkflowStore(options: RedisConnectionOptions = {}): StemPlugin {
  assertKnownOptions('redisWorkflowStore()', options, REDIS_CONNECTION_OPTION_KEYS);
  return singleService('redis-workflow-store', options, (connection, stem) => {
    const store = new RedisWorkflowStore(connection);
    stem.provide('workflowStore', store);
    return store;
  });
}

/** Provides the Redis lock store. */
export function redisLockStore(options: RedisConnectionOptions = {}): StemPlugin {
  assertKnownOptions('redisLockStore()', options, REDIS_CONNECTION_OPTION_KEYS);
  return singleService('redis-lock-store', options, (connection, stem) => {
    const store = new RedisLockStore(connection);
    stem.provide('lockStore', store);
    return store;
  });
}

/**
 * Provides all six services and the event bus over one shared connection (plus the broker's blocking connections
 * and the backend's subscriber): `redis({ url: 'redis://127.0.0.1:6379', namespace: 'stem' })`.
 */
export function redis(options: RedisPluginOptions = {}): StemPlugin {
  assertKnownOptions('redis()', options, REDIS_PLUGIN_OPTION_KEYS);
  const resolved = resolveConnectionOptions(options, 'redis');
  resolveBrokerOptions(options, 'redis');
  resolveResultTtl(options, 'redis');
  let services: Closable[] = [];
  return {
    name: 'redis',
    async apply(stem) {
      const connection = await RedisConnection.open(resolved);
      const broker = new RedisBroker(connection, options);
      const backend = new RedisResultBackend(connection, options);
      const revokeStore = new RedisRevokeStore(connection);
      const rateLimiter = new RedisRateLimiter(connection);
      const scheduleStore = new RedisScheduleStore(connection);
      const lockStore = new RedisLockStore(connection);
      const eventBus = new RedisEventBus(connection);
      const workflowStore = new RedisWorkflowStore(connection);
      services = [broker, backend, revokeStore, rateLimiter, scheduleStore, lockStore, eventBus, workflowStore];
      await connection.release();
      stem.provide('broker', broker);
      stem.provide('backend', backend);
      stem.provide('revokeStore', revokeStore);
      stem.provide('rateLimiter', rateLimiter);
      stem.provide('scheduleStore', scheduleStore);
      stem.provide('lockStore', lockStore);
      stem.provide('eventBus', eventBus);
      stem.provide('workflowStore', workflowStore);
    },
    async close() {
      const closing = services;
      services = [];
      await Promise.all(closing.map((service) => service.close()));
    },
  };
}
