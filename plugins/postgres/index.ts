import type { ServiceName, Services } from '../../sdk/contracts/index.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { MigrateCommand, registerMigrationTarget } from './migrate-command.js';
import { PostgresBroker } from './postgres-broker.js';
import { PostgresConnection } from './postgres-connection.js';
import { PostgresEventBus } from './postgres-event-bus.js';
import { PostgresLockStore } from './postgres-lock-store.js';
import { POSTGRES_OPTION_KEYS, resolvePostgresOptions, type PostgresOptions, type ResolvedPostgresOptions } from './postgres-options.js';
import { PostgresRateLimiter } from './postgres-rate-limiter.js';
import { PostgresResultBackend } from './postgres-result-backend.js';
import { PostgresRevokeStore } from './postgres-revoke-store.js';
import { PostgresScheduleStore } from './postgres-schedule-store.js';
import { PostgresWorkflowStore } from './postgres-workflow-store.js';

export type { PostgresOptions } from './postgres-options.js';
export type { Database } from './database.js';
export { PostgresBroker } from './postgres-broker.js';
export { PostgresConsumer } from './postgres-consumer.js';
export { PostgresResultBackend } from './postgres-result-backend.js';
export { PostgresRevokeStore } from './postgres-revoke-store.js';
export { PostgresScheduleStore } from './postgres-schedule-store.js';
export { PostgresWorkflowStore } from './postgres-workflow-store.js';
export { PostgresLockStore } from './postgres-lock-store.js';
export { PostgresRateLimiter } from './postgres-rate-limiter.js';
export { PostgresConnection } from './postgres-connection.js';
export { PostgresEventBus } from './postgres-event-bus.js';
export { runMigrations, MigrationError } from './schema-migrator.js';
export { MigrateCommand } from './migrate-command.js';

/** Anything a connection can back, closed by the plugin. */
interface Closeable {
  close(): Promise<void>;
}

/**
 * Builds a plugin that opens one connection on apply (migrating unless `migrate: false`), makes its
 * services over it and provides them; the result TTL defaults to the Stem config's `resultTtl`.
 */
function connectionPlugin(
  name: string,
  options: PostgresOptions,
  provide: (stem: Stem, connection: PostgresConnection) => Closeable[],
): StemPlugin {
  const resolved = resolvePostgresOptions(options, name);
  registerMigrationTarget(resolved.url, resolved.schema);
  let services: Closeable[] = [];
  return {
    name,
    commands: [MigrateCommand],
    async apply(stem) {
      const settings: ResolvedPostgresOptions =
        options.resultTtlMs === undefined && stem.settings?.resultTtlMs !== undefined
          ? { ...resolved, resultTtlMs: stem.settings.resultTtlMs }
          : resolved;
      const connection = await PostgresConnection.open(settings);
      // Held while the services are made, so that one closing early cannot end the shared pool.
      connection.retain();
      try {
        services = provide(stem, connection);
      } finally {
        await connection.release();
      }
    },
    async close() {
      const closing = services;
      services = [];
      for (const service of closing.reverse()) await service.close();
    },
  };
}

/** Provides every Postgres service (broker, result backend, revoke, schedule and lock stores, rate limiter, event bus) over one pool. */
export function postgres(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgres()', options, POSTGRES_OPTION_KEYS);
  return connectionPlugin('postgres', options, (stem, connection) => {
    const broker = new PostgresBroker(connection);
    const backend = new PostgresResultBackend(connection);
    const revokeStore = new PostgresRevokeStore(connection);
    const scheduleStore = new PostgresScheduleStore(connection);
    const lockStore = new PostgresLockStore(connection);
    const rateLimiter = new PostgresRateLimiter(connection);
    const eventBus = new PostgresEventBus(connection);
    const workflowStore = new PostgresWorkflowStore(connection);
    stem.provide('broker', broker);
    stem.provide('backend', backend);
    stem.provide('revokeStore', revokeStore);
    stem.provide('scheduleStore', scheduleStore);
    stem.provide('lockStore', lockStore);
    stem.provide('rateLimiter', rateLimiter);
    stem.provide('eventBus', eventBus);
    stem.provide('workflowStore', workflowStore);
    return [broker, backend, revokeStore, scheduleStore, lockStore, rateLimiter, eventBus, workflowStore];
  });
}

/** Builds the plugin that provides one service, made by `Service` over the plugin's own connection. */
function servicePlugin<K extends ServiceName>(
  name: string,
  service: K,
  Service: new (connection: PostgresConnection) => Services[K],
  options: PostgresOptions,
): StemPlugin {
  return connectionPlugin(name, options, (stem, connection) => {
    const impl = new Service(connection);
    stem.provide(service, impl);
    return [impl];
  });
}

/** Provides the Postgres broker (`FOR UPDATE SKIP LOCKED` claims, LISTEN/NOTIFY wake-ups) and the event bus over NOTIFY. */
export function postgresBroker(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresBroker()', options, POSTGRES_OPTION_KEYS);
  return connectionPlugin('postgres-broker', options, (stem, connection) => {
    const broker = new PostgresBroker(connection);
    const eventBus = new PostgresEventBus(connection);
    stem.provide('broker', broker);
    stem.provide('eventBus', eventBus);
    return [broker, eventBus];
  });
}

/** Provides the Postgres result backend (states with TTL, watch over LISTEN/NOTIFY, groups, chords, heartbeats). */
export function postgresResultBackend(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresResultBackend()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-result-backend', 'backend', PostgresResultBackend, options);
}

/** Provides the Postgres revoke store (versioned upserts). */
export function postgresRevokeStore(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresRevokeStore()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-revoke-store', 'revokeStore', PostgresRevokeStore, options);
}

/** Provides the Postgres schedule store (optimistic versions). */
export function postgresScheduleStore(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresScheduleStore()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-schedule-store', 'scheduleStore', PostgresScheduleStore, options);
}

/** Provides the Postgres workflow store (runs, checkpoints, waiters, early events) for plugins/workflows. */
export function postgresWorkflowStore(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresWorkflowStore()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-workflow-store', 'workflowStore', PostgresWorkflowStore, options);
}

/** Provides the Postgres lock store (owner and expiry per key). */
export function postgresLockStore(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresLockStore()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-lock-store', 'lockStore', PostgresLockStore, options);
}

/** Provides the Postgres rate limiter (a token bucket row per key). */
export function postgresRateLimiter(options: PostgresOptions): StemPlugin {
  assertKnownOptions('postgresRateLimiter()', options, POSTGRES_OPTION_KEYS);
  return servicePlugin('postgres-rate-limiter', 'rateLimiter', PostgresRateLimiter, options);
}
