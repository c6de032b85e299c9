import t from 'tap';
import { defineTask, Stem } from '../../sdk/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { sleep, uniqueName } from '../contract/support.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/** Ends every server connection whose application_name starts with `prefix` (pool and LISTEN alike). */
async function terminateBackends(prefix: string): Promise<number> {
  const { rows } = await adminQuery<{ terminated: boolean }>(
    `select pg_terminate_backend(pid) as terminated from pg_stat_activity where application_name like $1 || '%' and pid <> pg_backend_pid()`,
    [prefix],
  );
  return rows.length;
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('worker');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  t.test('every task completes while the worker’s backend connections are terminated mid-run', async (t) => {
    const applicationName = uniqueName('stem-worker');
    const queue = uniqueName('queue');
    let finished = 0;
    const double = defineTask({
      name: 'pg.double',
      handler: async (args: { n: number }) => {
        await sleep(50);
        finished++;
        return args.n * 2;
      },
    });
    const stem = await Stem.create({
      plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), applicationName })],
      tasks: [double],
      visibilityTimeout: '2s',
    });
    t.teardown(() => stem.close());
    const worker = stem.worker({ queues: [queue], concurrency: 8 });
    await worker.start();
    const handles = await stem.enqueueMany(
      Array.from({ length: 120 }, (_, i) => ({ task: double.name, args: { n: i }, options: { queue } })),
    );
    let terminated = 0;
    const finishedAtTermination: number[] = [];
    for (let round = 0; round < 6; round++) {
      await sleep(round === 0 ? 50 : 100);
      finishedAtTermination.push(finished);
      terminated += await terminateBackends(applicationName);
    }
    t.ok(terminated > 0, `terminated ${terminated} connections mid-run`);
    t.ok(
      finishedAtTermination.some((count) => count > 0 && count < handles.length),
      `terminated while tasks were running (finished then: ${finishedAtTermination.join(', ')})`,
    );
    const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 30_000 })));
    t.same(
      results,
      handles.map((_, i) => i * 2),
      'every task completed with its result',
    );
    await worker.stop();
  });

  t.test('producer and worker in one Stem over Postgres: enqueue, run, result, dead letter', async (t) => {
    const queue = uniqueName('queue');
    const add = defineTask({ name: 'pg.add', handler: async (args: { a: number; b: number }) => args.a + args.b });
    const namespace = uniqueName('ns');
    const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace })], tasks: [add] });
    t.teardown(() => stem.close());
    // A producer that knows no tasks enqueues by name, as another service would.
    const producer = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace })] });
    t.teardown(() => producer.close());
    const worker = stem.worker({ queues: [queue], concurrency: 4 });
    await worker.start();
    const handle = await stem.enqueue(add, { a: 2, b: 3 }, { queue });
    t.equal(await handle.result({ timeoutMs: 10_000 }), 5);
    t.equal(await producer.handle(handle.id).result({ timeoutMs: 10_000 }), 5, 'the result is readable from another Stem');
    const unknown = await producer.enqueue('pg.unknown', {}, { queue });
    const deadline = Date.now() + 10_000;
    let letter = null;
    while (letter === null && Date.now() < deadline) {
      letter = await stem.broker.getDeadLetter(queue, unknown.id);
      if (letter === null) await sleep(50);
    }
    t.equal(letter?.reason, 'unregistered-task', 'an unregistered task is dead-lettered');
    await worker.stop();
  });
}
