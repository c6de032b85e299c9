import t, { type Test } from 'tap';
import { defineTask, Stem, TaskFailedError } from '../../sdk/index.js';
import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { uniqueName } from '../contract/support.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/**
 * Strings Postgres `text` cannot hold (NUL, an unpaired UTF-16 surrogate) in a task's result, error
 * or arguments: JSON keeps them as `\u0000` / `\ud800`, and the plugin never makes the server
 * unescape a state or a payload, so each task ends in its right state and reads back exactly.
 */
if (await requirePostgres(t)) {
  const schema = uniqueSchema('unescapable');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  const odd = {
    nul: 'a\u0000b',
    surrogate: '\ud800',
    object: { 'k\u0000ey': ['v\u0000', '\udc00x', { '\ud800': 'lone' }], plain: 'é 🎉' },
  } as const;
  type Kind = keyof typeof odd;

  const make = defineTask({ name: 'odd.make', handler: async (args: { kind: Kind }) => odd[args.kind] });
  const throwing = defineTask({
    name: 'odd.throw',
    options: { maxRetries: 0 },
    handler: async (args: { text: string }) => {
      throw new Error(`bad ${args.text}`);
    },
  });
  const echo = defineTask({ name: 'odd.echo', handler: async (args: { text: string }) => args.text });

  const open = async (t: Test) => {
    const stem = await Stem.create({
      plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), migrate: false, pollIntervalMs: 20 })],
      tasks: [make, throwing, echo],
      extendedResults: true,
    });
    t.teardown(() => stem.close());
    return stem;
  };

  const failureOf = async (promise: Promise<unknown>): Promise<TaskFailedError> => {
    try {
      await promise;
    } catch (error) {
      if (error instanceof TaskFailedError) return error;
      throw error;
    }
    throw new Error('expected the task to fail');
  };

  t.test('results, errors and arguments holding NUL or a lone surrogate are stored, read back exactly and listed', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const made = await Promise.all((['nul', 'surrogate', 'object'] as const).map((kind) => stem.enqueue(make, { kind }, { queue })));
    const thrown = await stem.enqueue(throwing, { text: 'x' }, { queue });
    // Its arguments, kept under extendedResults, ride in every state, the failed one included.
    const failedWithArgs = await stem.enqueue(throwing, { text: 'y\u0000\ud800' }, { queue });
    const echoed = await stem.enqueue(echo, { text: 'z\u0000\udfff' }, { queue });

    const worker = stem.worker({ queues: [queue], concurrency: 4 });
    await worker.start();
    t.teardown(() => worker.stop());

    t.equal(await made[0]!.result({ timeoutMs: 20_000 }), odd.nul, 'NUL result');
    t.equal(await made[1]!.result({ timeoutMs: 20_000 }), odd.surrogate, 'lone surrogate result');
    t.same(await made[2]!.result({ timeoutMs: 20_000 }), odd.object, 'object with such keys and values');
    t.equal(await echoed.result({ timeoutMs: 20_000 }), 'z\u0000\udfff', 'arguments delivered and returned exactly');
    const thrownError = await failureOf(thrown.result({ timeoutMs: 20_000 }));
    t.equal(thrownError.errorMessage, 'bad x');
    const argsError = await failureOf(failedWithArgs.result({ timeoutMs: 20_000 }));
    t.equal(argsError.errorMessage, 'bad y\u0000\ud800', 'an error message holding NUL and a lone surrogate');

    const stored = async (id: string): Promise<TaskStatus> => (await stem.backend.get(id))!;
    t.equal((await stored(made[0]!.id)).result, odd.nul);
    t.equal((await stored(made[1]!.id)).result, odd.surrogate);
    t.same((await stored(made[2]!.id)).result, odd.object);
    const failed = await stored(failedWithArgs.id);
    t.equal(failed.state, 'failed');
    t.equal(failed.error?.message, 'bad y\u0000\ud800');
    t.equal((failed.args as { text: string }).text, 'y\u0000\ud800', 'the failed state keeps the arguments exactly');
    t.equal((await stored(echoed.id)).state, 'succeeded');

    const all = [...made, thrown, failedWithArgs, echoed].map((handle) => handle.id);
    const listed = (await stem.listTasks({ limit: 100 })).tasks;
    t.same(listed.map((task) => task.id).sort(), [...all].sort(), 'every task listed once');
    const order = listed.map((task) => [task.updatedAt, task.id] as const);
    const sorted = [...order].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0));
    t.same(order, sorted, 'newest first, ties by id descending');
    t.same(
      (await stem.listTasks({ name: 'odd.make' })).tasks.map((task) => task.id).sort(),
      made.map((handle) => handle.id).sort(),
      'the name filter reads rows that hold such strings',
    );
    t.same(
      (await stem.listTasks({ state: 'failed', queue })).tasks.map((task) => task.id).sort(),
      [thrown.id, failedWithArgs.id].sort(),
      'the queue filter too',
    );
    const page = await stem.listTasks({ limit: 3 });
    const rest = await stem.listTasks({ limit: 100, cursor: page.cursor });
    t.same(
      [...page.tasks, ...rest.tasks].map((task) => task.id),
      listed.map((task) => task.id),
      'paged by the cursor',
    );
    const { rows } = await adminQuery<{ n: string }>(`select count(*) as n from "${schema}".stem_messages where queue = $1`, [queue]);
    t.equal(Number(rows[0]!.n), 0, 'no message left to deliver again');
  });

  t.test('a queued task whose arguments hold NUL reads back and lists exactly, and keeps its concurrency key', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const text = 'q\u0000\ud800';
    const handle = await stem.enqueue(echo, { text }, { queue, concurrencyKey: 'k1' });
    const status = await stem.status(handle.id);
    t.equal(status.state, 'queued');
    t.equal((status.args as { text: string }).text, text, 'the queued state in the message row');
    const listed = await stem.listTasks({ state: 'queued', name: 'odd.echo' });
    t.same(
      listed.tasks.map((task) => (task.args as { text: string }).text),
      [text],
      'listed as queued, filtered by name',
    );
    const { rows } = await adminQuery<{ concurrency_key: string | null }>(
      `select concurrency_key from "${schema}".stem_messages where task_id = $1`,
      [handle.id],
    );
    t.same(
      rows.map((row) => row.concurrency_key),
      ['k1'],
      'the key is read from a payload holding NUL',
    );
    const worker = stem.worker({ queues: [queue] });
    await worker.start();
    t.teardown(() => worker.stop());
    t.equal(await handle.result({ timeoutMs: 20_000 }), text);
  });
}
