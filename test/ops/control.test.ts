import t, { type Test } from 'tap';
import { ClosedError, Stem, defineTask, type StemPlugin, type TaskContext } from 'stem';
import { ControlClient, control } from '../../plugins/control/index.js';
import { redis } from '../../plugins/redis/index.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { waitFor } from '../helpers/wait.js';

// In memory: the control protocol itself, with no server. Redis and the real binary are in cli.test.ts.

const hold = defineTask({
  name: 'ops.hold',
  handler: (_args: Record<string, never>, ctx: TaskContext) =>
    new Promise<string>((resolve) => ctx.signal.addEventListener('abort', () => resolve('aborted'))),
});

/** The timeout of a request to named workers: it ends once they answered, so only a worker that never does reaches it. */
const REPLY_CEILING = '30s';

async function controlled(t: Test): Promise<Stem> {
  const stem = await Stem.create({ tasks: [hold], plugins: [control({ namespace: 'ops-test' })] });
  t.teardown(() => stem.close());
  return stem;
}

t.test('ping reaches every live worker and -w picks one by id', async (t) => {
  const stem = await controlled(t);
  const one = stem.worker({ id: 'one', queues: ['a'] });
  const two = stem.worker({ id: 'two', queues: ['b'] });
  await one.start();
  await two.start();
  const client = new ControlClient(stem, { namespace: 'ops-test' });
  // A broadcast collects for its whole timeout; asked again until both answered, so that a slow machine cannot fail it.
  let replies: Awaited<ReturnType<typeof client.request>> = [];
  await waitFor(async () => (replies = await client.request('ping', {}, { timeout: '500ms' })).length >= 2, 'both workers to answer');
  t.same(replies.map((reply) => reply.workerId).sort(), ['one', 'two']);
  t.match(replies.find((reply) => reply.workerId === 'one')!.reply, {
    workerId: 'one',
    pid: process.pid,
    queues: ['a'],
    pausedQueues: [],
    state: 'running',
  });
  const targeted = await client.request('ping', {}, { destination: ['two'], timeout: REPLY_CEILING });
  t.same(
    targeted.map((reply) => reply.workerId),
    ['two'],
    'only the named worker answers, and the wait ends once it did',
  );
});

t.test('a worker on another namespace does not answer', async (t) => {
  const stem = await controlled(t);
  await stem.worker({ id: 'solo' }).start();
  t.same(await new ControlClient(stem, { namespace: 'elsewhere' }).request('ping', {}, { timeout: '200ms' }), []);
});

t.test('stats and inspect show the running task, its runtime and the counters', async (t) => {
  const stem = await controlled(t);
  const worker = stem.worker({ id: 'busy', queues: ['work'], concurrency: 1, prefetchMultiplier: 2 });
  await worker.start();
  const running = await stem.enqueue(hold, {}, { queue: 'work' });
  const waiting = await stem.enqueue(hold, {}, { queue: 'work' });
  await waitFor(() => worker.runningCount() === 1 && worker.stats().reserved === 1, 'one running, one reserved');
  const client = new ControlClient(stem, { namespace: 'ops-test' });
  const [stats] = await client.request('stats', {}, { destination: ['busy'], timeout: REPLY_CEILING });
  t.match(stats!.reply, { inflight: 1, reserved: 1, concurrency: 1, autoscaler: null, memory: { rssBytes: Number } });
  const [inspected] = await client.request('inspect', {}, { destination: ['busy'], timeout: REPLY_CEILING });
  const answer = inspected!.reply as { active: Array<{ id: string; runtimeMs: number }>; reserved: Array<{ id: string }> };
  t.equal(answer.active[0]!.id, running.id);
  t.ok(answer.active[0]!.runtimeMs >= 0);
  t.equal(answer.reserved[0]!.id, waiting.id);
  worker.terminate(running.id);
  worker.terminate(waiting.id);
});

t.test('pause stops fetching from a queue, resume starts again; other queues go on', async (t) => {
  const stem = await controlled(t);
  const add = defineTask({ name: 'ops.add', handler: async (args: { a: number }) => args.a + 1 });
  stem.registry.register(add);
  const worker = stem.worker({ id: 'pauser', queues: ['p1', 'p2'] });
  await worker.start();
  const client = new ControlClient(stem, { namespace: 'ops-test' });
  const [paused] = await client.pauseQueue('p1', { destination: ['pauser'], timeout: REPLY_CEILING });
  t.same(paused!.reply, { queue: 'p1', consuming: true, paused: true });
  const blocked = await stem.enqueue(add, { a: 1 }, { queue: 'p1' });
  const free = await stem.enqueue(add, { a: 2 }, { queue: 'p2' });
  t.equal(await free.result({ timeoutMs: 60_000 }), 3, 'the other queue is still consumed');
  t.equal((await blocked.status()).state, 'queued', 'the paused queue waits');
  t.equal(await stem.broker.pending('p1'), 1);
  await client.resumeQueue('p1', { destination: ['pauser'], timeout: REPLY_CEILING });
  t.equal(await blocked.result({ timeoutMs: 60_000 }), 2, 'resumed: the task runs');
  const [notMine] = await client.pauseQueue('elsewhere', { destination: ['pauser'], timeout: REPLY_CEILING });
  t.same(
    notMine!.reply,
    { queue: 'elsewhere', consuming: false, paused: false },
    'a queue the worker does not consume is reported, not an error',
  );
});

t.test('unknown commands get an error reply; shutdown replies, then stops the worker', async (t) => {
  const stem = await controlled(t);
  const worker = stem.worker({ id: 'leaving' });
  await worker.start();
  const client = new ControlClient(stem, { namespace: 'ops-test' });
  const [unknown] = await client.request('reboot', {}, { destination: ['leaving'], timeout: REPLY_CEILING });
  t.match(unknown, { ok: false, error: /unknown control command "reboot"/ });
  const [bye] = await client.request('shutdown', { mode: 'hard' }, { destination: ['leaving'], timeout: REPLY_CEILING });
  t.match(bye, { ok: true, reply: { mode: 'hard', inflight: 0 } });
  await waitFor(() => worker.state === 'stopped', 'the worker stopped');
  t.same(await client.request('ping', {}, { timeout: '200ms' }), [], 'a stopped worker no longer answers');
});

t.test('a request whose Stem closes while it collects replies returns what it collected (memory and Redis)', async (t) => {
  const brokers: Array<[string, () => StemPlugin[]]> = [['memory', () => []]];
  const namespace = testNamespace('control-close');
  if (await requireRedis(t)) {
    brokers.push(['redis', () => [redis({ url: REDIS_URL, namespace })]]);
    t.teardown(() => deleteNamespace(namespace));
  }
  for (const [name, plugins] of brokers) {
    const stem = await Stem.create({ tasks: [hold], plugins: [...plugins(), control({ namespace: 'ops-test-close' })] });
    const client = new ControlClient(stem, { namespace: 'ops-test-close' });
    const broker = stem.broker;
    const consumerOf = broker.consumer.bind(broker);
    const collecting = new Promise<void>((resolve) => {
      broker.consumer = async (options) => {
        const consumer = await consumerOf(options);
        resolve();
        return consumer;
      };
    });
    // No worker answers, so the request collects until its deadline; the Stem closes once its reply
    // consumer is open. A closed Redis consumer answers every fetch with nothing at once, and the loop
    // used to spin on it without ever letting the deadline's timer run (the process hung); the memory
    // one throws ClosedError. Either way the request must end: with what it collected, or with
    // ClosedError when the close beat its publish.
    const pending = client.request('ping', {}, { timeout: '2s' }).catch((error: unknown) => error);
    await collecting;
    await stem.close();
    const outcome = await pending;
    t.ok(
      (Array.isArray(outcome) && outcome.length === 0) || outcome instanceof ClosedError,
      `${name}: the request ended (${outcome instanceof Error ? outcome.message : JSON.stringify(outcome)})`,
    );
  }
});
