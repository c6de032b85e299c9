import t from 'tap';
import {
  SqliteBroker,
  SqliteConnection,
  SqliteLockStore,
  SqliteRateLimiter,
  SqliteResultBackend,
  SqliteRevokeStore,
  SqliteScheduleStore,
  type SqliteServiceSettings,
} from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import {
  brokerContract,
  lockStoreContract,
  rateLimiterContract,
  resultBackendContract,
  revokeStoreContract,
  scheduleStoreContract,
  taskListingContract,
} from '../contract/index.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

// Every contract suite against one database file, each case on a namespace of its own, as a plugin would make it.
const dir = tempDir('contract');
t.teardown(() => dir.cleanup());
const options = resolveSqliteOptions({ url: dir.url() });

const make =
  <T>(Service: new (connection: SqliteConnection, settings: SqliteServiceSettings) => T) =>
  async (): Promise<T> =>
    new Service(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs });

await brokerContract(t, { name: 'sqlite', create: make(SqliteBroker) });
await resultBackendContract(t, { name: 'sqlite', create: make(SqliteResultBackend) });
await taskListingContract(t, { name: 'sqlite', create: make(SqliteResultBackend) });
await revokeStoreContract(t, { name: 'sqlite', create: make(SqliteRevokeStore) });
await rateLimiterContract(t, { name: 'sqlite', create: make(SqliteRateLimiter) });
await scheduleStoreContract(t, { name: 'sqlite', create: make(SqliteScheduleStore) });
await lockStoreContract(t, { name: 'sqlite', create: make(SqliteLockStore) });

// The in-memory database (sqlite::memory:) passes them too: one process, a database per service.
const memory = resolveSqliteOptions({ url: 'sqlite::memory:' });
const inMemory =
  <T>(Service: new (connection: SqliteConnection, settings: SqliteServiceSettings) => T) =>
  async (): Promise<T> =>
    new Service(await SqliteConnection.open(memory), { namespace: 'default', resultTtlMs: memory.resultTtlMs });
await brokerContract(t, { name: 'sqlite::memory:', create: inMemory(SqliteBroker) });
await resultBackendContract(t, { name: 'sqlite::memory:', create: inMemory(SqliteResultBackend) });
await taskListingContract(t, { name: 'sqlite::memory:', create: inMemory(SqliteResultBackend) });
