import t from 'tap';
import { SqliteConnection, SqliteResultBackend } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import type { TaskStatus } from '../../sdk/contracts/index.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

// Expired states go: final ones through the expiry index, the others through the sweep by key.
const dir = tempDir('prune');
t.teardown(() => dir.cleanup());

t.test('prune deletes expired final and unfinished states, keeps live ones', async (t) => {
  const connection = await SqliteConnection.open(resolveSqliteOptions({ url: dir.url() }));
  const namespace = uniqueNamespace();
  const backend = new SqliteResultBackend(connection, { namespace, resultTtlMs: 60_000 });
  t.teardown(() => backend.close());
  const status = (id: string, state: TaskStatus['state']): TaskStatus =>
    ({ id, state, name: 'noop', queue: 'q', attempt: 0, updatedAt: Date.now() }) as TaskStatus;
  await backend.set([status('gone-final', 'succeeded'), status('gone-queued', 'queued'), status('gone-running', 'running')], { ttlMs: 1 });
  await backend.set([status('kept-final', 'succeeded'), status('kept-queued', 'queued')]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  backend.prune();
  const ids = connection.db.prepare('select id from stem_results where namespace = ? order by id').pluck().all(namespace);
  t.same(ids, ['kept-final', 'kept-queued']);
  t.equal((await backend.get('kept-final'))?.state, 'succeeded');
});
