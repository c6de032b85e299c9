import t from 'tap';
import { SqliteBroker, SqliteConnection } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import { boundedQueueContract } from '../contract/index.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

const dir = tempDir('bounded');
t.teardown(() => dir.cleanup());
const options = resolveSqliteOptions({ url: dir.url() });
await boundedQueueContract(t, {
  name: 'sqlite',
  create: async () =>
    new SqliteBroker(await SqliteConnection.open(options), { namespace: uniqueNamespace(), resultTtlMs: options.resultTtlMs }),
});
