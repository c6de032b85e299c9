import t, { type Test } from 'tap';
import { events } from '../../plugins/events/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { Stem, type StemEvent, type TaskEvent } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { adminQuery, dropSchema, requirePostgres, testUrl as POSTGRES_URL, uniqueSchema } from '../postgres/postgres-harness.js';
import { adminClient, deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { add } from './event-tasks.js';

/**
 * A listener whose connection is killed misses what is published while it is away (documented),
 * then receives again once it has reconnected: a task enqueued after that shows all its events.
 */
async function survivesKill(t: Test, producer: Stem, listener: Stem, kill: () => Promise<void>): Promise<void> {
  const seen: StemEvent[] = [];
  await listener.events.subscribe((event) => seen.push(event));
  await producer.worker({ events: true, concurrency: 1 }).start();
  const first = await producer.enqueue(add, { a: 1, b: 1 });
  const of = (id: string) => seen.filter((e) => (e as TaskEvent).taskId === id).map((e) => e.type);
  await waitFor(() => of(first.id).includes('task-succeeded'), 'the first task seen', 120_000);
  await kill();
  // Events published while the listener reconnects may be lost: keep enqueueing until one task is seen whole.
  await waitFor(
    async () => {
      const next = await producer.enqueue(add, { a: 2, b: 2 });
      await next.result({ timeoutMs: 120_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      return of(next.id).join() === 'task-received,task-started,task-succeeded';
    },
    'a task seen whole after the reconnection',
    120_000,
  );
  t.pass('events arrive again after the listener reconnected');
}

t.test('Redis: the subscriber connection killed (CLIENT KILL) resubscribes', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('events-kill');
  t.teardown(() => deleteNamespace(namespace));
  const producer = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace }), events()], tasks: [add] });
  t.teardown(() => producer.close());
  const listener = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
  t.teardown(() => listener.close());
  const admin = await adminClient();
  t.teardown(() => admin.disconnect());
  await survivesKill(t, producer, listener, async () => {
    // Only this test's subscriber, found by the name the plugin gives it: other tests share the server.
    const list = (await admin.call('CLIENT', 'LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => line.includes(`name=stem:${namespace}:events `))
      .map((line) => /\bid=(\d+)/.exec(line)![1]!);
    t.equal(ids.length, 1, 'one events subscriber connection');
    for (const id of ids) await admin.call('CLIENT', 'KILL', 'ID', id);
  });
});

t.test('Postgres: the LISTEN connection terminated (pg_terminate_backend) listens again', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueSchema('events_kill');
  t.teardown(() => dropSchema(schema));
  const producer = await Stem.create({ plugins: [postgres({ url: POSTGRES_URL, schema }), events()], tasks: [add] });
  t.teardown(() => producer.close());
  const listener = await Stem.create({ plugins: [postgres({ url: POSTGRES_URL, schema })] });
  t.teardown(() => listener.close());
  await survivesKill(t, producer, listener, async () => {
    // The LISTEN connections of this schema (the producer's and the listener's): their last statement names it.
    const { rows } = await adminQuery<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND query LIKE $1 AND pid <> pg_backend_pid()",
      [`%${schema}%`],
    );
    t.ok(rows.length >= 1, `found ${rows.length} LISTEN connection(s) of ${schema}`);
    for (const row of rows) await adminQuery('SELECT pg_terminate_backend($1)', [row.pid]);
  });
});
