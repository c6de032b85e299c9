import t, { type Test } from 'tap';
import { defineTask, InvalidNameError, MemoryBroker, Stem, type Envelope, type StemPlugin } from '../../sdk/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { uniqueName } from '../helpers/wait.js';

/** One bad enqueue: what it passes, and the field its error must name. */
interface BadEnqueue {
  what: string;
  task?: string;
  options: { id?: string; queue?: string };
  field: RegExp;
}

const badEnqueues = (queue: string): BadEnqueue[] => [
  {
    what: 'a 10 KB custom id',
    options: { id: 'x'.repeat(10_240), queue },
    field: /^invalid task id: .*10240 bytes long, over the limit of 256 bytes; pass an id/,
  },
  {
    what: 'a NUL in the id',
    options: { id: 'order\u00001', queue },
    field: /^invalid task id: "order\\u00001": it contains the control character U\+0000/,
  },
  {
    what: 'a NUL in the queue name',
    options: { queue: `${queue}\u0000x` },
    field: /^invalid queue name: .*U\+0000.*leave the `queue` option out/,
  },
  { what: 'an empty queue name', options: { queue: '' }, field: /^invalid queue name: it is empty; name the queue/ },
  { what: 'a newline in the task name', task: 'valid.work\nrm -rf', options: { queue }, field: /^invalid task name: .*U\+000A/ },
  { what: 'an empty task name', task: '', options: { queue }, field: /^invalid task name: it is empty/ },
  { what: 'a lone surrogate in the id', options: { id: 'a\ud800b', queue }, field: /^invalid task id: .*lone UTF-16 surrogate/ },
];

/**
 * Enqueues a healthy task, then every bad one (each must throw InvalidNameError naming its field,
 * alone and inside a batch with healthy ones), checks that `snapshot` of the store did not change,
 * then enqueues another healthy task: both healthy ones run once, no bad one runs.
 */
async function healthyBesideBad(t: Test, plugins: StemPlugin[], snapshot: () => Promise<unknown>): Promise<void> {
  const queue = uniqueName('queue');
  const runs: number[] = [];
  const work = defineTask({ name: 'valid.work', handler: async (args: { n: number }) => void runs.push(args.n) });
  const stem = await Stem.create({ plugins, tasks: [work] });
  t.teardown(() => stem.close());
  const first = await stem.enqueue(work, { n: 1 }, { queue });
  const before = await snapshot();
  for (const bad of badEnqueues(queue)) {
    await t.rejects(stem.enqueue(bad.task ?? work.name, { n: 99 }, bad.options), InvalidNameError, `${bad.what}: refused`);
    await t.rejects(
      stem.enqueue(bad.task ?? work.name, { n: 99 }, bad.options),
      { message: bad.field, exitCode: 64 },
      `${bad.what}: the error names the field and the fix`,
    );
    await t.rejects(
      stem.enqueueMany([
        { task: work, args: { n: 98 }, options: { queue } },
        { task: bad.task ?? work.name, args: { n: 99 }, options: bad.options },
      ]),
      InvalidNameError,
      `${bad.what}: a batch holding it is refused whole`,
    );
  }
  t.same(await snapshot(), before, 'the bad enqueues wrote nothing anywhere');
  const second = await stem.enqueue(work, { n: 2 }, { queue });
  const worker = stem.worker({ queues: [queue] });
  await worker.start();
  await first.result({ timeoutMs: 60_000 });
  await second.result({ timeoutMs: 60_000 });
  await worker.stop();
  t.same(runs.sort(), [1, 2], 'the healthy tasks ran once each, and nothing else ran');
}

t.test('memory: a bad name or id is refused at enqueue and writes nothing; healthy tasks run once', async (t) => {
  let stem: Stem | undefined;
  const capture: StemPlugin = { name: 'capture', apply: (s) => void (stem = s) };
  await healthyBesideBad(t, [capture], async () => {
    const queues = await stem!.broker.listQueues();
    return { queues, pending: await Promise.all(queues.map((queue) => stem!.broker.pending(queue))) };
  });
});

t.test('a publish that fails leaves no queued state when broker and backend are separate', async (t) => {
  // A broker that refuses every publish, beside the memory backend: the producer publishes first.
  class RefusingBroker extends MemoryBroker {
    override async publish(_envelopes: readonly Envelope[]): Promise<void> {
      throw new Error('the broker is down');
    }
  }
  const stem = await Stem.create({ plugins: [{ name: 'refusing', apply: (s) => s.provide('broker', new RefusingBroker()) }] });
  t.teardown(() => stem.close());
  await t.rejects(stem.enqueue('valid.work', {}, { id: 'refused-1' }), /the broker is down/);
  t.equal(await stem.backend.get('refused-1'), null, 'no queued state of a task that was never published');
});

if (await requireRedis(t)) {
  t.test('redis: a bad name or id is refused at enqueue and writes nothing; healthy tasks run once', async (t) => {
    const namespace = testNamespace('names');
    t.teardown(() => deleteNamespace(namespace));
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    await healthyBesideBad(t, [redis({ url: REDIS_URL, namespace, blockMs: 200 })], async () => {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await admin.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
      keys.sort();
      // Each key with its type and size: a write to any of them shows.
      return Promise.all(
        keys.map(async (key) => {
          const type = await admin.type(key);
          const size =
            type === 'stream'
              ? await admin.xlen(key)
              : type === 'zset'
                ? await admin.zcard(key)
                : type === 'set'
                  ? await admin.scard(key)
                  : type === 'hash'
                    ? await admin.hlen(key)
                    : type === 'list'
                      ? await admin.llen(key)
                      : await admin.strlen(key);
          return `${key} ${type} ${size}`;
        }),
      );
    });
  });
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('names');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  const rows = async () => {
    const { rows } = await adminQuery(
      `select (select json_agg(task_id order by id) from "${schema}".stem_messages) as messages,
        (select json_agg(id order by id) from "${schema}".stem_results) as results,
        (select json_agg(queue order by queue) from "${schema}".stem_queues) as queues`,
    );
    return rows[0];
  };

  t.test('postgres: a bad name or id is refused at enqueue and writes nothing; healthy tasks run once', async (t) => {
    await healthyBesideBad(t, [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), pollIntervalMs: 200 })], rows);
  });

  t.test('postgres: a publish whose statement fails writes neither the message, the queue name nor the queued state', async (t) => {
    const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns') })] });
    t.teardown(() => stem.close());
    const broker = stem.broker;
    t.ok(broker.publishWithStates, 'the Postgres broker writes messages and states together');
    const envelope = (id: string, queue: string): Envelope => ({
      id,
      name: 'valid.work',
      args: {},
      headers: {},
      queue,
      priority: 5,
      attempt: 0,
      maxRetries: 0,
      visibilityTimeoutMs: 30_000,
      createdAt: Date.now(),
      meta: {},
    });
    const queued = (id: string, queue: string) => ({
      id,
      state: 'queued' as const,
      name: 'valid.work',
      queue,
      attempt: 0,
      updatedAt: Date.now(),
    });
    const before = await rows();
    // Past the kernel's checks on purpose: what the statement itself does when the server refuses.
    // A state too large for its NOTIFY (a watched id of 10 KB), beside a healthy message:
    const big = 'y'.repeat(10_240);
    await t.rejects(
      broker.publishWithStates!(stem.backend, [queued('fine-1', 'q-fine'), queued(big, 'q-big')], { quiet: false }, [
        envelope('fine-1', 'q-fine'),
        envelope(big, 'q-big'),
      ]),
      /payload string too long/,
    );
    // A NUL in a queue name, which Postgres text cannot hold:
    await t.rejects(
      broker.publishWithStates!(stem.backend, [queued('fine-2', 'q\u0000nul')], { quiet: true }, [envelope('fine-2', 'q\u0000nul')]),
      /0x00|invalid byte sequence|null character/,
    );
    t.same(await rows(), before, 'nothing was written: no message, no queue name, no state');
  });
}
