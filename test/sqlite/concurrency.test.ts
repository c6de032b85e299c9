import t from 'tap';
import { SqliteBroker, SqliteConnection } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import { concurrencyContract } from '../contract/index.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

// The concurrency capability's contract on one database file, each case on a namespace of its own.
const dir = tempDir('concurrency');
t.teardown(() => dir.cleanup());
const options = resolveSqliteOptions({ url: dir.url() });
await concurrencyContract(t, {
  name: 'sqlite',
  create: async () =>
    new SqliteBroker(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs }),
});

// The in-memory database (sqlite::memory:) too: one process, a database per broker.
const memory = resolveSqliteOptions({ url: 'sqlite::memory:' });
await concurrencyContract(t, {
  name: 'sqlite::memory:',
  create: async () => new SqliteBroker(await SqliteConnection.open(memory), { namespace: 'default', resultTtlMs: memory.resultTtlMs }),
});
