// Workflows on SQLite: the store contract and the order scenarios, on one file.
import t from 'tap';
import { SqliteConnection, SqliteWorkflowStore, sqlite } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import { workflowStoreContract } from '../contract/index.js';
import { tempDir, uniqueNamespace } from '../sqlite/sqlite-harness.js';
import { orderScenarios } from './order-scenarios.js';

const dir = tempDir('workflows');
t.teardown(() => dir.cleanup());
const options = resolveSqliteOptions({ url: dir.url() });

await workflowStoreContract(t, {
  name: 'sqlite',
  create: async () =>
    new SqliteWorkflowStore(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs }),
});

await orderScenarios(t, { plugins: () => [sqlite({ url: dir.url('stem.db') })] });
