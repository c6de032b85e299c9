import t from 'tap';
import {
  InvalidArgumentsError,
  InvalidDurationError,
  MemoryBroker,
  Stem,
  UnknownTaskError,
  UsageError,
  defineTask,
  uuidv7Time,
  type Envelope,
  type StemPlugin,
} from '../../sdk/index.js';

const add = defineTask({
  name: 'math.add',
  options: { queue: 'math', maxRetries: 3, priority: 4 },
  handler: async (args: { a: number; b: number }) => args.a + args.b,
});

/** A real memory broker that records each publish call, to count round trips. */
function countingBroker(): { plugin: StemPlugin; publishes: Envelope[][] } {
  const publishes: Envelope[][] = [];
  const broker = new MemoryBroker();
  const publish = broker.publish.bind(broker);
  broker.publish = async (envelopes) => {
    publishes.push([...envelopes]);
    return publish(envelopes);
  };
  return { publishes, plugin: { name: 'counting-broker', apply: (stem) => stem.provide('broker', broker), close: () => broker.close() } };
}

t.test('an envelope carries a UUIDv7 id, the task defaults and per-enqueue overrides', async (t) => {
  const stem = await Stem.create({ tasks: [add] });
  t.teardown(() => stem.close());
  const before = Date.now();
  const plain = await stem.enqueue(add, { a: 1, b: 2 });
  t.match(plain.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.ok(uuidv7Time(plain.id) >= before, 'the id encodes its creation time');
  t.equal(plain.envelope?.queue, 'math');
  t.equal(plain.envelope?.priority, 4);
  t.equal(plain.envelope?.maxRetries, 3);
  t.equal(plain.envelope?.attempt, 0);
  t.equal((await stem.status(plain.id)).state, 'queued');

  const custom = await stem.enqueue(
    add,
    { a: 1, b: 2 },
    { queue: 'urgent', priority: 9, maxRetries: 0, headers: { tenant: 'acme' }, notBefore: '5s', expiresAt: '1m', id: 'my-id' },
  );
  const envelope = custom.envelope!;
  t.equal(envelope.id, 'my-id');
  t.equal(envelope.queue, 'urgent');
  t.equal(envelope.priority, 9);
  t.equal(envelope.maxRetries, 0);
  t.same(envelope.headers, { tenant: 'acme' });
  t.ok(envelope.notBefore! >= before + 5_000 && envelope.notBefore! <= Date.now() + 5_000, 'notBefore is 5s after enqueue');
  t.ok(envelope.expiresAt! >= before + 60_000, 'expiresAt is 1m after enqueue');
});

t.test('notBefore accepts a Date and an ISO time (ETA)', async (t) => {
  const stem = await Stem.create({ tasks: [add] });
  t.teardown(() => stem.close());
  const eta = new Date(Date.now() + 3_600_000);
  t.equal((await stem.enqueue(add, { a: 1, b: 1 }, { notBefore: eta })).envelope?.notBefore, eta.getTime());
  t.equal((await stem.enqueue(add, { a: 1, b: 1 }, { notBefore: eta.toISOString() })).envelope?.notBefore, eta.getTime());
  t.equal(await stem.broker.pending('math'), 2, 'delayed tasks count as pending');
});

t.test('bad options are refused with a message naming them', async (t) => {
  const stem = await Stem.create({ tasks: [add] });
  t.teardown(() => stem.close());
  await t.rejects(stem.enqueue(add, { a: 1, b: 2 }, { priority: 10 }), UsageError);
  await t.rejects(stem.enqueue(add, { a: 1, b: 2 }, { priority: 10 }), /priority 10 is out of range: use a whole number from 0/);
  await t.rejects(stem.enqueue(add, { a: 1, b: 2 }, { notBefore: '5 parsecs' }), InvalidDurationError);
  await t.rejects(stem.enqueue(add, { a: 1, b: 2 }, { notBefore: '5 parsecs' }), /notBefore: "5 parsecs" is not a duration/);
  await t.rejects(stem.enqueue(add, { a: 1, b: 2 }, { maxRetries: -1 }), /maxRetries -1/);
});

t.test('an unknown task name is refused when the producer has a registry', async (t) => {
  const stem = await Stem.create({ tasks: [add] });
  t.teardown(() => stem.close());
  await t.rejects(stem.enqueue('math.sub', { a: 1 }), UnknownTaskError);
  await t.rejects(stem.enqueue('math.sub', { a: 1 }), /unknown task "math.sub".*registered tasks: math.add/);
  const bare = await Stem.create({});
  t.teardown(() => bare.close());
  const byName = await bare.enqueue('math.sub', { a: 1 });
  t.equal(byName.name, 'math.sub', 'a producer without a registry may enqueue any name');
});

t.test('arguments that JSON cannot carry are refused with the path that is wrong', async (t) => {
  const stem = await Stem.create({});
  t.teardown(() => stem.close());
  const cases: Array<[unknown, RegExp]> = [
    [{ user: { callback: () => 1 } }, /at args\.user\.callback: a function/],
    [{ ids: [1, 2n] }, /at args\.ids\[1\]: a bigint/],
    [{ when: new Map() }, /at args\.when: a Map instance/],
    [{ ratio: Number.NaN }, /at args\.ratio: NaN is not a finite number/],
    [{ list: [undefined] }, /at args\.list\[0\]: undefined/],
    [{ 'odd key': Symbol('x') }, /at args\["odd key"\]: a symbol/],
  ];
  for (const [args, message] of cases) {
    await t.rejects(stem.enqueue('any', args), InvalidArgumentsError);
    await t.rejects(stem.enqueue('any', args), message);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await t.rejects(stem.enqueue('any', { cyclic }), /at args\.cyclic\.self: circular reference/);
  const fine = await stem.enqueue('any', { when: new Date(0), nested: [{ ok: true, skipped: undefined }] });
  t.ok(fine.id, 'Dates (toJSON) and undefined object keys are fine');
});

t.test('enqueueMany publishes the whole batch in one call', async (t) => {
  const { plugin, publishes } = countingBroker();
  const stem = await Stem.create({ plugins: [plugin], tasks: [add] });
  t.teardown(() => stem.close());
  const handles = await stem.enqueueMany(Array.from({ length: 500 }, (_, i) => ({ task: add, args: { a: i, b: 1 } })));
  t.equal(handles.length, 500);
  t.equal(publishes.length, 1, 'one publish call');
  t.equal(publishes[0]!.length, 500);
  t.equal(new Set(handles.map((h) => h.id)).size, 500, 'ids are unique');
  await stem.worker({ queues: ['math'], concurrency: 50 }).start();
  t.same(await Promise.all(handles.slice(0, 3).map((h) => h.result({ timeoutMs: 60_000 }))), [1, 2, 3]);
});
