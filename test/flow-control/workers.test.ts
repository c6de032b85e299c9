import t, { type Test } from 'tap';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import { defineTask, MemoryBroker, MemoryResultBackend, Retry, Stem, type StemPlugin, type TaskDefinition } from '../../sdk/index.js';
import { sleep, uniqueName } from '../contract/support.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { tempDir, uniqueNamespace } from '../sqlite/sqlite-harness.js';

/** How each Stem of a run reaches the shared broker and backend: one plugin per Stem. */
type Transport = { name: string; plugin: () => StemPlugin; cleanup?: () => Promise<unknown> };

/** What the handlers record, per key: how many run now, the most at once, and the order of starts. */
class Recorder {
  readonly running = new Map<string, number>();
  readonly most = new Map<string, number>();
  readonly starts = new Map<string, Array<{ i: number; attempt: number }>>();
  total = 0;
  mostTotal = 0;

  enter(key: string, i: number, attempt: number): void {
    const now = (this.running.get(key) ?? 0) + 1;
    this.running.set(key, now);
    this.most.set(key, Math.max(this.most.get(key) ?? 0, now));
    this.mostTotal = Math.max(this.mostTotal, ++this.total);
    let starts = this.starts.get(key);
    if (starts === undefined) this.starts.set(key, (starts = []));
    starts.push({ i, attempt });
  }

  leave(key: string): void {
    this.running.set(key, this.running.get(key)! - 1);
    this.total--;
  }
}

/** Starts `count` Stems, each with one worker of `concurrency` on `queue`, all on one broker. */
async function workers(
  t: Test,
  transport: Transport,
  tasks: TaskDefinition[],
  queue: string,
  count: number,
  concurrency: number,
): Promise<Stem[]> {
  const stems: Stem[] = [];
  for (let i = 0; i < count; i++) {
    const stem = await Stem.create({ plugins: [transport.plugin()], tasks, visibilityTimeout: '5s' });
    stems.push(stem);
    await stem.worker({ queues: [queue], concurrency }).start();
  }
  t.teardown(async () => {
    for (const stem of stems.reverse()) await stem.close();
    await transport.cleanup?.();
  });
  return stems;
}

async function suite(transport: Transport): Promise<void> {
  await t.test(`${transport.name}: 3 workers × concurrency 20, 200 tasks of 10 keys with limit 2`, async (t) => {
    const queue = uniqueName('queue');
    const recorder = new Recorder();
    const work = defineTask({
      name: 'flow.keyed',
      options: { queue, concurrencyKey: (args: { tenant: string }) => args.tenant, concurrencyLimit: 2 },
      handler: async (args: { tenant: string; i: number }, ctx) => {
        recorder.enter(args.tenant, args.i, ctx.attempt);
        // Each task stays until its key had two running and three ran at once over all keys (or a ceiling only a broker
        // that withholds them reaches): with 5-20 ms handlers alone, a machine slower to start the next task than to
        // finish one could see neither, and fail 'every key reached its limit of 2'. Over the limit still fails.
        const deadline = Date.now() + 30_000;
        while (((recorder.most.get(args.tenant) ?? 0) < 2 || recorder.mostTotal <= 2) && Date.now() < deadline) await sleep(5);
        await sleep(5 + (args.i % 4) * 5);
        recorder.leave(args.tenant);
        return args.i;
      },
    });
    const [producer] = await workers(t, transport, [work], queue, 3, 20);
    const handles = await producer!.enqueueMany(
      Array.from({ length: 200 }, (_, i) => ({ task: work, args: { tenant: `tenant-${i % 10}`, i } })),
    );
    const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
    t.same(
      results,
      handles.map((_, i) => i),
      'every task ran once and succeeded',
    );
    t.same([...recorder.most.values()].sort(), Array(10).fill(2), 'every key reached its limit of 2 and never went over it');
    t.ok(recorder.mostTotal > 2, `keys ran side by side (at most ${recorder.mostTotal} at once over all keys): no key blocked the others`);
  });

  await t.test(`${transport.name}: ordered keys run in enqueue order across 3 workers, a retry keeping its turn`, async (t) => {
    const queue = uniqueName('queue');
    const recorder = new Recorder();
    const step = defineTask({
      name: 'flow.ordered',
      options: {
        queue,
        concurrencyKey: (args: { account: string }) => args.account,
        ordered: true,
        maxRetries: 2,
        retryPolicy: { maxRetries: 2, delayMs: 30, jitter: false },
      },
      handler: async (args: { account: string; i: number }, ctx) => {
        recorder.enter(args.account, args.i, ctx.attempt);
        await sleep(2);
        recorder.leave(args.account);
        // Every third task fails its first attempt: its retry must still come before the next task.
        if (args.i % 3 === 1 && ctx.attempt === 0) throw new Retry({ countdownMs: 30 });
        return args.i;
      },
    });
    const [producer] = await workers(t, transport, [step], queue, 3, 10);
    const handles = await producer!.enqueueMany(
      Array.from({ length: 40 }, (_, i) => ({ task: step, args: { account: `acct-${i % 4}`, i: Math.floor(i / 4) } })),
    );
    await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
    for (const [account, starts] of [...recorder.starts].sort()) {
      const expected: Array<{ i: number; attempt: number }> = [];
      for (let i = 0; i < 10; i++) {
        expected.push({ i, attempt: 0 });
        if (i % 3 === 1) expected.push({ i, attempt: 1 });
      }
      t.same(starts, expected, `${account}: starts in enqueue order, each retry right after its first attempt`);
      t.equal(recorder.most.get(account), 1, `${account}: one at a time`);
    }
  });
}

await suite({
  name: 'memory',
  plugin: (() => {
    const broker = new MemoryBroker();
    const backend = new MemoryResultBackend();
    return () => ({
      name: 'shared-memory',
      apply(stem) {
        stem.provide('broker', broker);
        stem.provide('backend', backend);
      },
    });
  })(),
});

if (await requireRedis(t)) {
  const namespace = testNamespace('flow');
  await suite({ name: 'redis', plugin: () => redis({ url: REDIS_URL, namespace }), cleanup: () => deleteNamespace(namespace) });
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('flow');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  const namespace = uniqueName('ns');
  await suite({ name: 'postgres', plugin: () => postgres({ url: testUrl, schema, namespace, migrate: false, poolSize: 4 }) });
}

{
  const dir = tempDir('flow');
  t.teardown(() => dir.cleanup());
  const namespace = uniqueNamespace('flow');
  await suite({ name: 'sqlite', plugin: () => sqlite({ url: dir.url(), namespace }) });
}
