// Worker operation on the SQLite plugin, in one process: producer and worker, results read from
// another Stem on the same file, dead letters, wake-ups on time, canvas and Beat.
import t from 'tap';
import { defineTask, Stem, type Envelope, type StemPlugin, type TaskDefinition } from '../../sdk/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import { canvasOf, task } from '../../plugins/canvas/index.js';
import { canvas } from '../../plugins/canvas/index.js';
import { beat } from '../../plugins/beat/index.js';
import { SCHEDULE_ID_HEADER, SCHEDULED_FOR_HEADER } from '../../plugins/beat/schedule-rules.js';
import { sleep, uniqueName, waitFor } from '../helpers/wait.js';
import { wakeOnTimeCases } from '../helpers/wake-on-time-cases.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

const dir = tempDir('worker');
const url = dir.url();
const stems: Stem[] = [];
t.teardown(async () => {
  for (const stem of stems.reverse()) await stem.close();
  dir.cleanup();
});

/** A Stem on the test file (namespace `namespace`), closed at the end. */
async function open(
  namespace: string,
  tasks: TaskDefinition[] = [],
  extra: StemPlugin[] = [],
  options: { pollIntervalMs?: number } = {},
): Promise<Stem> {
  const stem = await Stem.create({ plugins: [sqlite({ url, namespace, ...options }), ...extra], tasks });
  stems.push(stem);
  return stem;
}

t.test('producer and worker over SQLite: enqueue, run, result from another Stem, dead letter', async (t) => {
  const queue = uniqueName('queue');
  const add = defineTask({ name: 'sq.add', handler: async (args: { a: number; b: number }) => args.a + args.b });
  const namespace = uniqueNamespace();
  const stem = await open(namespace, [add]);
  // A producer that knows no tasks enqueues by name, as another service would.
  const producer = await open(namespace);
  const worker = stem.worker({ queues: [queue], concurrency: 4 });
  await worker.start();
  const handle = await stem.enqueue(add, { a: 2, b: 3 }, { queue });
  t.equal(await handle.result({ timeoutMs: 60_000 }), 5);
  t.equal(await producer.handle(handle.id).result({ timeoutMs: 60_000 }), 5, 'the result is readable from another Stem');
  const byName = await producer.enqueue('sq.add', { a: 40, b: 2 }, { queue });
  t.equal(await byName.result({ timeoutMs: 60_000 }), 42, 'a task enqueued by name from the other Stem runs');
  const unknown = await producer.enqueue('sq.unknown', {}, { queue });
  await waitFor(async () => (await stem.broker.getDeadLetter(queue, unknown.id)) !== null, 'the dead letter');
  t.equal((await stem.broker.getDeadLetter(queue, unknown.id))?.reason, 'unregistered-task', 'an unregistered task is dead-lettered');
  await worker.stop();
});

t.test('many tasks on two workers of two Stems: each runs once, every result arrives', async (t) => {
  const queue = uniqueName('queue');
  const runs = new Map<number, number>();
  const slow = defineTask({
    name: 'sq.slow',
    handler: async (args: { n: number }) => {
      runs.set(args.n, (runs.get(args.n) ?? 0) + 1);
      await sleep(2);
      return args.n * 2;
    },
  });
  const namespace = uniqueNamespace();
  const [a, b] = [await open(namespace, [slow]), await open(namespace, [slow])];
  await a.worker({ queues: [queue], concurrency: 8 }).start();
  await b.worker({ queues: [queue], concurrency: 8 }).start();
  const handles = await a.enqueueMany(Array.from({ length: 300 }, (_, n) => ({ task: slow.name, args: { n }, options: { queue } })));
  const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
  t.same(
    results,
    handles.map((_, n) => n * 2),
    'every result, in order',
  );
  t.same(
    [...runs.values()].filter((count) => count !== 1),
    [],
    'no task ran twice',
  );
  t.equal(await a.broker.pending(queue), 0);
});

t.test('a chain and a chord on two Stems: the callback fires once with the results in order', async (t) => {
  const queue = 'default';
  const calls: string[] = [];
  const inc = defineTask({ name: 'sq.inc', handler: async (args: { x?: number; parent?: number }) => (args.parent ?? args.x ?? 0) + 1 });
  const part = defineTask({ name: 'sq.part', handler: async (args: { n: number }) => `p${args.n}` });
  const collect = defineTask({
    name: 'sq.collect',
    handler: async (args: { parent?: string[] }, ctx) => {
      calls.push(ctx.id);
      return args.parent!.join(',');
    },
  });
  const namespace = uniqueNamespace();
  const tasks = [inc, part, collect];
  const [a, b] = [await open(namespace, tasks, [canvas()]), await open(namespace, tasks, [canvas()])];
  await a.worker({ queues: [queue], concurrency: 4 }).start();
  await b.worker({ queues: [queue], concurrency: 4 }).start();
  const chainId = await canvasOf(a).chain([task(inc, { x: 1 }), task(inc, {}), task(inc, {})]);
  t.equal(await a.handle<number>(chainId).result({ timeoutMs: 60_000 }), 4, 'each step got its parent result');
  const chordId = await canvasOf(a).chord({ body: Array.from({ length: 12 }, (_, n) => task(part, { n })), callback: task(collect, {}) });
  t.equal(await b.handle<string>(chordId).result({ timeoutMs: 60_000 }), Array.from({ length: 12 }, (_, n) => `p${n}`).join(','));
  await sleep(300);
  t.same(calls, [chordId], 'the callback ran once');
});

t.test('two Beats on one file enqueue each firing exactly once', async (t) => {
  const namespace = uniqueNamespace();
  const published: Envelope[] = [];
  const [a, b] = [await open(namespace, [], [beat({ tick: '50ms' })]), await open(namespace, [], [beat({ tick: '50ms' })])];
  for (const stem of [a, b]) stem.hooks.published.tapPromise('test', async (envelopes) => void published.push(...envelopes));
  const entry = { id: 'contended', task: 'sq.count', schedule: 'every:1s', enabled: true, version: 0, nextRunAt: Date.now() + 200 };
  await a.service('scheduleStore').upsert(entry);
  await waitFor(() => published.length >= 3, 'three firings', 60_000);
  await a.close();
  await b.close();
  const bySlot = new Map<string, number>();
  for (const envelope of published) {
    t.equal(envelope.headers[SCHEDULE_ID_HEADER], 'contended');
    const slot = envelope.headers[SCHEDULED_FOR_HEADER]!;
    bySlot.set(slot, (bySlot.get(slot) ?? 0) + 1);
  }
  t.same(
    [...bySlot.entries()].filter(([, count]) => count > 1),
    [],
    'no slot was enqueued twice',
  );
});

// Idle consumers look at least once a second (their safety sleep); the change monitor's fallback is set to a minute here.
t.test('wake-ups on time', async (t) => {
  const namespace = uniqueNamespace();
  wakeOnTimeCases(t, {
    stem: (tasks, extra = []) => open(namespace, tasks, extra, { pollIntervalMs: 60_000 }),
    async idle() {},
  });
});
