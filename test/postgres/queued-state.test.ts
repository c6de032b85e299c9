import t, { type Test } from 'tap';
import { broadcastAddress } from '../../sdk/envelope.js';
import { defineTask, Stem } from '../../sdk/index.js';
import { postgres, postgresBroker, postgresResultBackend, runMigrations } from '../../plugins/postgres/index.js';
import { uniqueName } from '../contract/support.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/**
 * The `queued` state in the message row (migration 10): with `postgres()` as broker and result
 * backend, an enqueue writes one row per task, and the backend reads the `queued` state from it
 * until a state row of the task exists.
 */
if (await requirePostgres(t)) {
  const schema = uniqueSchema('queued');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  const work = defineTask({ name: 'queued.work', handler: async (args: { n: number }) => args.n * 2 });
  const received = new Map<string, string>();
  const echo = defineTask({
    name: 'queued.echo',
    handler: async (args: { text: string }, ctx) => {
      received.set(ctx.id, args.text);
      return args.text.length;
    },
  });

  /** The rows the database holds of a task. */
  const rowsOf = async (id: string): Promise<{ messages: number; carried: number; results: number }> => {
    const { rows } = await adminQuery<{ messages: string; carried: string; results: string }>(
      `select (select count(*) from "${schema}".stem_messages where task_id = $1) as messages,
              (select count(*) from "${schema}".stem_messages where task_id = $1 and queued_state is not null) as carried,
              (select count(*) from "${schema}".stem_results where id = $1) as results`,
      [id],
    );
    return { messages: Number(rows[0]!.messages), carried: Number(rows[0]!.carried), results: Number(rows[0]!.results) };
  };

  const open = async (t: Test, options: { trackQueued?: boolean; extendedResults?: boolean } = {}) => {
    const stem = await Stem.create({
      plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), migrate: false, pollIntervalMs: 20 })],
      tasks: [work, echo],
      ...options,
    });
    t.teardown(() => stem.close());
    return stem;
  };

  t.test('a task enqueued in bulk is one message row that carries its queued state, read back by status and listTasks', async (t) => {
    const stem = await open(t, { extendedResults: true });
    const queue = uniqueName('q');
    const handles = await stem.enqueueMany([0, 1, 2].map((n) => ({ task: work, args: { n }, options: { queue } })));
    for (const handle of handles) t.same(await rowsOf(handle.id), { messages: 1, carried: 1, results: 0 }, 'one row, no state row');
    const status = await stem.status(handles[1]!.id);
    t.match(status, { id: handles[1]!.id, state: 'queued', name: 'queued.work', queue, attempt: 0, args: { n: 1 } });
    t.type(status.updatedAt, 'number');
    const page = await stem.listTasks({ state: ['queued'] });
    t.same(page.tasks.map((task) => task.id).sort(), handles.map((handle) => handle.id).sort(), 'listed as queued');
    t.same((await stem.listTasks({ state: ['queued'], name: 'nothing.else' })).tasks, [], 'filters apply to them');
    const first = await stem.listTasks({ state: ['queued'], limit: 2 });
    const rest = await stem.listTasks({ state: ['queued'], limit: 2, cursor: first.cursor });
    t.equal(new Set([...first.tasks, ...rest.tasks].map((task) => task.id)).size, 3, 'paged by the cursor');

    const worker = stem.worker({ queues: [queue], concurrency: 2 });
    await worker.start();
    t.teardown(() => worker.stop());
    for (const handle of handles) await handle.result({ timeoutMs: 20_000 });
    t.equal((await stem.status(handles[2]!.id)).state, 'succeeded');
    t.same(await rowsOf(handles[2]!.id), { messages: 0, carried: 0, results: 1 }, 'the ack swapped the message for the state row');
    t.same((await stem.listTasks({ state: ['queued'] })).tasks, [], 'nothing queued any more');
  });

  t.test('arguments with quotes, backslashes, control characters and non-ASCII text go through a bulk publish intact', async (t) => {
    const stem = await open(t, { extendedResults: true });
    const queue = uniqueName('q');
    // U+0001 is what a publish joins its payloads with; JSON.stringify escapes it like every control character.
    const texts = ['"quoted" \\ back\\slash', 'tab\tnew\nline \u0001 \u001f', 'é ü 日本 🎉', '{"json":[1,2]}', ''];
    const handles = await stem.enqueueMany(texts.map((text) => ({ task: echo, args: { text }, options: { queue } })));
    for (let i = 0; i < texts.length; i++) t.same((await stem.status(handles[i]!.id)).args, { text: texts[i] }, `queued state ${i}`);
    const worker = stem.worker({ queues: [queue], concurrency: 2 });
    await worker.start();
    t.teardown(() => worker.stop());
    for (let i = 0; i < texts.length; i++) {
      t.equal(await handles[i]!.result({ timeoutMs: 20_000 }), texts[i]!.length, `result ${i}`);
      t.equal(received.get(handles[i]!.id), texts[i], `delivered ${i}`);
    }
  });

  t.test('a delayed task reads as queued with its due time until it runs', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const handle = await stem.enqueue(work, { n: 3 }, { queue, notBefore: Date.now() + 60_000 });
    const status = await stem.status(handle.id);
    t.equal(status.state, 'queued');
    t.type(status.meta?.['stem.notBefore'], 'number', 'its due time in the meta');
    t.equal(await stem.broker.purge(queue), 1);
    t.equal((await stem.status(handle.id)).state, 'pending', 'a purged task takes its queued state with it');
  });

  t.test('a state row, once written, wins over the message row (a running or retried task)', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const handle = await stem.enqueue(work, { n: 4 }, { queue });
    const running = { id: handle.id, state: 'running' as const, name: 'queued.work', queue, attempt: 0, updatedAt: Date.now() };
    await stem.backend.set([running]);
    t.equal((await stem.status(handle.id)).state, 'running');
    t.same((await stem.listTasks({ state: ['queued'] })).tasks, [], 'not listed as queued any more');
    t.same(
      (await stem.listTasks({ state: ['running'] })).tasks.map((task) => task.id),
      [handle.id],
    );
    await stem.broker.purge(queue);
  });

  t.test('a caller-chosen id keeps a state row of its own (its write is ordered against earlier runs and NOTIFYs)', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const id = uniqueName('mine');
    await stem.enqueue(work, { n: 5 }, { queue, id });
    t.same(await rowsOf(id), { messages: 1, carried: 0, results: 1 });
    t.equal((await stem.status(id)).state, 'queued');
    t.equal((await stem.listTasks({ state: ['queued'] })).tasks.filter((task) => task.id === id).length, 1, 'listed once');
    await stem.broker.purge(queue);
  });

  t.test('listTasks pages through queued states in message rows and state rows alike, newest first', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      // Alternately a caller's id (a state row) and a generated one (the message row), each a millisecond apart.
      const handle = await stem.enqueue(work, { n: i }, i % 2 === 0 ? { queue, id: uniqueName(`own${i}`) } : { queue });
      ids.push(handle.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await stem.listTasks({ state: 'queued', queue, limit: 4, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.tasks.map((task) => task.id));
      cursor = page.cursor;
    } while (cursor !== undefined);
    t.same(seen, [...ids].reverse(), 'each once, newest first, across pages');
    await stem.broker.purge(queue);
  });

  t.test('ignoreResult and trackQueued: false leave no queued state anywhere', async (t) => {
    const stem = await open(t);
    const queue = uniqueName('q');
    const ignored = await stem.enqueue(work, { n: 6 }, { queue, ignoreResult: true });
    t.same(await rowsOf(ignored.id), { messages: 1, carried: 0, results: 0 });
    t.equal((await stem.status(ignored.id)).state, 'pending');
    const untracked = await open(t, { trackQueued: false });
    const [plain] = await untracked.enqueueMany([{ task: work, args: { n: 7 }, options: { queue } }]);
    t.same(await rowsOf(plain!.id), { messages: 1, carried: 0, results: 0 });
    t.equal((await stem.status(plain!.id)).state, 'pending');
    await stem.broker.purge(queue);
  });

  t.test('a broker and a result backend on separate connections write the state row as before', async (t) => {
    const namespace = uniqueName('ns');
    const stem = await Stem.create({
      plugins: [
        postgresBroker({ url: testUrl, schema, namespace, migrate: false }),
        postgresResultBackend({ url: testUrl, schema, namespace, migrate: false }),
      ],
      tasks: [work],
    });
    t.teardown(() => stem.close());
    const queue = uniqueName('q');
    const handle = await stem.enqueue(work, { n: 8 }, { queue });
    t.same(await rowsOf(handle.id), { messages: 1, carried: 0, results: 1 });
    t.equal((await stem.status(handle.id)).state, 'queued');
    await stem.broker.purge(queue);
  });

  t.test('a broadcast carries its queued state in every copy and is listed once', async (t) => {
    const stem = await open(t);
    const channel = uniqueName('fan');
    const consumers = await Promise.all(
      ['a', 'b'].map((who) => stem.broker.consumer({ queues: [], broadcasts: [channel], consumerId: uniqueName(who) })),
    );
    t.teardown(() => Promise.all(consumers.map((consumer) => consumer.close())));
    const handle = await stem.enqueue(work, { n: 9 }, { queue: broadcastAddress(channel) });
    t.same(await rowsOf(handle.id), { messages: 2, carried: 2, results: 0 });
    t.equal((await stem.status(handle.id)).state, 'queued');
    t.equal((await stem.listTasks({ state: ['queued'] })).tasks.filter((task) => task.id === handle.id).length, 1);
  });
}
