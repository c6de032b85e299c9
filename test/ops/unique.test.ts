import t from 'tap';
import { Stem, defineTask } from 'stem';
import { canonicalJson, duplicateOf, DUPLICATE_OF_META, unique } from '../../plugins/unique/index.js';
import { CLOCK_SLACK_MS, retryOnStall, STALLED } from '../contract/support.js';
import { sleep } from '../helpers/wait.js';
import { opsCluster } from './ops-harness.js';

const report = defineTask({
  name: 'ops.unique.report',
  options: { unique: true, uniqueFor: '10m' },
  handler: async (args: { day: string; format: { kind: string; pages: number } }) => `${args.day}:${args.format.kind}`,
});

t.test('canonical JSON ignores key order at every depth', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }), '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  t.equal(canonicalJson({ a: 1, skip: undefined }), canonicalJson({ a: 1 }));
});

t.test('a duplicate enqueue returns the first task id, says so, and publishes nothing (Redis)', async (t) => {
  const cluster = await opsCluster(t, 'unique');
  if (!cluster) return;
  const producer = await cluster.stem([report]);
  const otherProcess = await cluster.stem([report]);
  const first = await producer.enqueue(report, { day: 'mon', format: { kind: 'pdf', pages: 2 } }, { queue: 'u' });
  const again = await otherProcess.enqueue(report, { format: { pages: 2, kind: 'pdf' }, day: 'mon' }, { queue: 'u' });
  t.equal(again.id, first.id, 'the same arguments in another key order are the same task');
  t.equal(duplicateOf(again), first.id);
  t.equal(again.envelope?.meta[DUPLICATE_OF_META], first.id);
  t.equal(duplicateOf(first), undefined, 'the first enqueue is not a duplicate');
  const other = await producer.enqueue(report, { day: 'tue', format: { kind: 'pdf', pages: 2 } }, { queue: 'u' });
  t.not(other.id, first.id, 'other arguments make another task');
  t.equal(await producer.broker.pending('u'), 2, 'the duplicate was not published');

  const mixed = await producer.enqueueMany([
    { task: report, args: { day: 'mon', format: { kind: 'pdf', pages: 2 } }, options: { queue: 'u' } },
    { task: report, args: { day: 'wed', format: { kind: 'pdf', pages: 2 } }, options: { queue: 'u' } },
  ]);
  t.equal(mixed[0]!.id, first.id, 'in a batch, the duplicate gets the first id');
  t.not(mixed[1]!.id, first.id);
  t.equal(await producer.broker.pending('u'), 3, 'and only the new one is published');

  const worker = otherProcess.worker({ queues: ['u'] });
  await worker.start();
  t.equal(await again.result({ timeoutMs: 60_000 }), 'mon:pdf', "the duplicate's handle awaits the first task's result");
});

t.test('the key frees after uniqueFor; a custom key function decides what counts as the same', async (t) => {
  // The second enqueue must come within uniqueFor (200 ms); when a stall of the machine made it later (seen from the
  // clock) and it was rightly a new task, the case runs again with a 4x uniqueFor.
  await retryOnStall(t, 200, async (uniqueForMs, lastTry) => {
    const byCustomer = defineTask({
      name: 'ops.unique.sync',
      options: {
        unique: true,
        uniqueFor: `${uniqueForMs}ms`,
        uniqueKey: (args: { customer: number; attempt: number }) => String(args.customer),
      },
      handler: async () => 'synced',
    });
    const stem = await Stem.create({ tasks: [byCustomer], plugins: [unique()] });
    t.teardown(() => stem.close());
    const started = Date.now();
    const first = await stem.enqueue(byCustomer, { customer: 7, attempt: 1 });
    const keyedAt = Date.now(); // the key was taken by now, so it is free after this plus uniqueFor
    const same = await stem.enqueue(byCustomer, { customer: 7, attempt: 2 });
    if (same.id !== first.id && Date.now() - started >= uniqueForMs - CLOCK_SLACK_MS && !lastTry) return STALLED;
    t.equal(same.id, first.id, 'the custom key ignores the attempt');
    await sleep(Math.max(0, keyedAt + uniqueForMs - Date.now()) + 50);
    const after = await stem.enqueue(byCustomer, { customer: 7, attempt: 3 });
    t.not(after.id, first.id, 'after uniqueFor a new task is enqueued');
    t.equal(duplicateOf(after), undefined);
  });
});

t.test('tasks without unique are untouched, and a bad uniqueFor is refused at startup', async (t) => {
  const plain = defineTask({ name: 'ops.unique.plain', handler: async () => 1 });
  const stem = await Stem.create({ tasks: [plain], plugins: [unique()] });
  t.teardown(() => stem.close());
  const a = await stem.enqueue(plain, {});
  const b = await stem.enqueue(plain, {});
  t.not(a.id, b.id);
  const broken = defineTask({ name: 'ops.unique.broken', options: { unique: true, uniqueFor: 'soon' }, handler: async () => 1 });
  await t.rejects(
    Stem.create({ tasks: [broken], plugins: [unique()] }),
    /task "ops.unique.broken": option "uniqueFor": "soon" is not a duration/,
  );
});
