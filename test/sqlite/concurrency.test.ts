import t from 'tap';
import { SqliteBroker, SqliteConnection, sqlite } from '../../plugins/sqlite/index.js';
import { defineTask, Stem } from '../../sdk/index.js';
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

t.test('sqlite: a task-wide limit (concurrencyLimit alone, key task:<name>) holds across two Stems on one file', async (t) => {
  const url = dir.url('task-wide.db');
  const namespace = uniqueNamespace('taskwide');
  let running = 0;
  let most = 0;
  const build = defineTask({
    name: 'reports.build',
    options: { queue: 'reports', concurrencyLimit: 3 },
    handler: async (args: { i: number }) => {
      most = Math.max(most, ++running);
      // Each build stays until three ran at once (or a ceiling only a broker that withholds them reaches): with 10 ms
      // alone, a machine slower to start the next build than to finish one never saw three. Over three still fails.
      const deadline = Date.now() + 30_000;
      while (most < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 10));
      running--;
      return args.i;
    },
  });
  const stems = [
    await Stem.create({ plugins: [sqlite({ url, namespace })], tasks: [build] }),
    await Stem.create({ plugins: [sqlite({ url, namespace })], tasks: [build] }),
  ];
  t.teardown(async () => {
    for (const stem of stems) await stem.close();
  });
  const handles = await stems[0]!.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ task: build, args: { i } })));
  t.same(await stems[0]!.broker.concurrency!.stats('reports'), [{ key: 'task:reports.build', running: 0, waiting: 30, limit: 3 }]);
  for (const stem of stems) await stem.worker({ queues: ['reports'], concurrency: 10 }).start();
  const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
  t.same(
    results,
    handles.map((_, i) => i),
    'every task ran',
  );
  t.equal(most, 3, 'at most 3 builds at once over both workers (20 slots), and the limit was reached');
});
