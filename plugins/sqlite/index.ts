import type { ServiceName, Services } from '../../sdk/contracts/index.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { SqliteBroker } from './sqlite-broker.js';
import { SqliteConnection } from './sqlite-connection.js';
import { SqliteLockStore } from './sqlite-lock-store.js';
import { resolveSqliteOptions, SQLITE_OPTION_KEYS, type SqliteOptions } from './sqlite-options.js';
import { SqliteRateLimiter } from './sqlite-rate-limiter.js';
import { SqliteResultBackend } from './sqlite-result-backend.js';
import { SqliteRevokeStore } from './sqlite-revoke-store.js';
import { SqliteScheduleStore } from './sqlite-schedule-store.js';
import type { SqliteServiceSettings } from './sqlite-service.js';
import { SqliteWorkflowStore } from './sqlite-workflow-store.js';

export type { SqliteOptions } from './sqlite-options.js';
export type { SqliteServiceSettings } from './sqlite-service.js';
export { sqliteUrlPath } from './sqlite-options.js';
export { SqliteBroker } from './sqlite-broker.js';
export { SqliteConsumer } from './sqlite-consumer.js';
export { SqliteResultBackend } from './sqlite-result-backend.js';
export { SqliteRevokeStore } from './sqlite-revoke-store.js';
export { SqliteScheduleStore } from './sqlite-schedule-store.js';
export { SqliteLockStore } from './sqlite-lock-store.js';
export { SqliteRateLimiter } from './sqlite-rate-limiter.js';
export { SqliteWorkflowStore } from './sqlite-workflow-store.js';
export { SqliteConnection, SqliteMigrationError } from './sqlite-connection.js';

/** Anything a connection can back, closed by the plugin. */
interface Closeable {
  close(): Promise<void>;
}

/** A service class of the plugin. */
type ServiceClass<K extends ServiceName> = new (connection: SqliteConnection, settings: SqliteServiceSettings) => Services[K] & Closeable;

/** Every service of the plugin, by the name the kernel provides it under (no event bus: `stem events` refuses SQLite). */
const SERVICES: { [K in Exclude<ServiceName, 'eventBus'>]: ServiceClass<K> } = {
  broker: SqliteBroker,
  backend: SqliteResultBackend,
  revokeStore: SqliteRevokeStore,
  scheduleStore: SqliteScheduleStore,
  lockStore: SqliteLockStore,
  rateLimiter: SqliteRateLimiter,
  workflowStore: SqliteWorkflowStore,
};

/**
 * Builds a plugin that opens (or shares) the file's connection on apply, migrating unless
 * `migrate: false`, and provides `services` over it; `only` may narrow them at apply time. The
 * result TTL defaults to the Stem config's `resultTtl`.
 */
function connectionPlugin(
  name: string,
  options: SqliteOptions,
  services: readonly ServiceName[],
  only?: (stem: Stem) => readonly ServiceName[],
): StemPlugin {
  const resolved = resolveSqliteOptions(options, name);
  let opened: Closeable[] = [];
  return {
    name,
    async apply(stem) {
      const wanted = only === undefined ? services : only(stem);
      if (wanted.length === 0) return;
      const connection = await SqliteConnection.open(resolved);
      const settings: SqliteServiceSettings = {
        namespace: resolved.namespace,
        resultTtlMs:
          options.resultTtlMs === undefined && stem.settings?.resultTtlMs !== undefined ? stem.settings.resultTtlMs : resolved.resultTtlMs,
      };
      // Held while the services are made, so that none closing early can end the shared handle.
      connection.retain();
      try {
        for (const service of wanted) {
          const impl = new SERVICES[service as keyof typeof SERVICES](connection, settings);
          stem.provide(service, impl as never);
          opened.push(impl);
        }
      } finally {
        await connection.release();
      }
    },
    async close() {
      const closing = opened;
      opened = [];
      for (const service of closing.reverse()) await service.close();
    },
  };
}

/**
 * Provides every SQLite service (broker, result backend, revoke, schedule and lock stores, rate
 * limiter) over one file: one machine, several processes, no server.
 *
 * @example
 * import { sqlite } from 'stem/plugins/sqlite';
 * export default defineConfig({ plugins: [sqlite({ url: 'sqlite://.stem/stem.db' })] });
 */
export function sqlite(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqlite()', options, SQLITE_OPTION_KEYS);
  return connectionPlugin('sqlite', options, Object.keys(SERVICES) as ServiceName[]);
}

/**
 * The SQLite services no earlier plugin provided, and none at all when one already provides a
 * broker: the stem CLI's zero-server default (`sqlite://.stem/stem.db` when no broker is
 * configured). The file is opened only when it is used.
 */
export function sqliteFallback(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteFallback()', options, SQLITE_OPTION_KEYS);
  const services = Object.keys(SERVICES) as ServiceName[];
  return connectionPlugin('sqlite-default', options, services, (stem) =>
    stem.provides('broker') ? [] : services.filter((service) => !stem.provides(service)),
  );
}

/** Builds the plugin that provides one service over the file's (shared) connection. */
function servicePlugin(name: string, service: ServiceName, options: SqliteOptions): StemPlugin {
  return connectionPlugin(name, options, [service]);
}

/** Provides the SQLite broker (`BEGIN IMMEDIATE` claims, leases, delays, priorities, dead letters, broadcasts). */
export function sqliteBroker(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteBroker()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-broker', 'broker', options);
}

/** Provides the SQLite result backend (states in order with TTL, watch across processes, groups, chords, heartbeats). */
export function sqliteResultBackend(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteResultBackend()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-result-backend', 'backend', options);
}

/** Provides the SQLite revoke store (versioned upserts). */
export function sqliteRevokeStore(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteRevokeStore()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-revoke-store', 'revokeStore', options);
}

/** Provides the SQLite schedule store (optimistic versions). */
export function sqliteScheduleStore(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteScheduleStore()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-schedule-store', 'scheduleStore', options);
}

/** Provides the SQLite workflow store (runs, checkpoints, waiters, early events) for plugins/workflows. */
export function sqliteWorkflowStore(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteWorkflowStore()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-workflow-store', 'workflowStore', options);
}

/** Provides the SQLite lock store (owner and expiry per key). */
export function sqliteLockStore(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteLockStore()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-lock-store', 'lockStore', options);
}

/** Provides the SQLite rate limiter (a token bucket row per key). */
export function sqliteRateLimiter(options: SqliteOptions): StemPlugin {
  assertKnownOptions('sqliteRateLimiter()', options, SQLITE_OPTION_KEYS);
  return servicePlugin('sqlite-rate-limiter', 'rateLimiter', options);
}
