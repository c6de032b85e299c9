import t, { type Test } from 'tap';
import { Stem, type TaskDefinition, type TaskError, TaskFailedError, type TaskHandle } from '../../sdk/index.js';
import { type IsolationOptions, isolation } from '../../plugins/isolation/index.js';
import { waitFor } from '../helpers/wait.js';
import * as isolated from './isolated-tasks.js';

const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);

async function setUp(t: Test, options: IsolationOptions, worker: Parameters<Stem['worker']>[0] = {}) {
  const plugin = isolation(options);
  const stem = await Stem.create({ tasks, plugins: [plugin] });
  t.teardown(() => stem.close());
  const started = stem.worker({ concurrency: 2, ...worker });
  await started.start();
  return { stem, plugin, worker: started };
}

/** Waits for a task that must fail, and returns the error its result backend stored (type, message, stack, code). */
async function failure(stem: Stem, handle: TaskHandle<unknown>): Promise<{ error: TaskError }> {
  try {
    await handle.result({ timeoutMs: 60_000 });
  } catch (error) {
    if (!(error instanceof TaskFailedError)) throw error;
    const status = await stem.status(handle.id);
    return { error: status.error! };
  }
  throw new Error('the task succeeded; a failure was expected');
}

t.test('a 5 s synchronous loop in an isolated task stalls nothing on its worker', async (t) => {
  const { stem, plugin } = await setUp(t, { pool: 'threads' }, { concurrency: 4, heartbeatInterval: '100ms' });
  let spinning = false;
  let heartbeatsWhileSpinning = 0;
  let othersWhileSpinning = 0;
  let receivedSpin = 0;
  stem.signals.on('worker-heartbeat', () => {
    if (spinning) heartbeatsWhileSpinning++;
  });
  stem.signals.on('task-received', ({ envelope }) => {
    if (envelope.name === 'iso.spin') receivedSpin++;
  });
  stem.signals.on('task-started', ({ envelope }) => {
    if (envelope.name === 'iso.spin') spinning = true;
  });
  stem.signals.on('task-succeeded', ({ envelope }) => {
    if (envelope.name === 'iso.spin') spinning = false;
    else if (envelope.name === 'iso.add' && spinning) othersWhileSpinning++;
  });
  // The lease (2 s) runs out twice over while the loop runs: only renewals keep the task here. (It was 1 s: a stall of the
  // main thread longer than the time left after a renewal let it go.)
  const spin = await stem.enqueue(isolated.spin, { ms: 5_000 }, { visibilityTimeout: '2s' });
  await waitFor(() => spinning, 'the loop to start', 120_000);
  const sums = [];
  for (let i = 0; i < 10; i++) sums.push(await (await stem.enqueue(isolated.add, { a: i, b: 1 })).result({ timeoutMs: 60_000 }));
  t.same(sums, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'tasks on the event loop ran');
  const result = await spin.result({ timeoutMs: 60_000 });
  t.ok(result.turns > 0 && result.child.startsWith('thread:'), 'the loop ran in a thread');
  // On a blocked event loop none would finish while the loop runs; on a loaded machine the ten round trips can outlast
  // the 5 s loop, so those that finished during it are counted, not required to be all ten.
  t.ok(othersWhileSpinning >= 1, `other tasks finished while the loop ran (${othersWhileSpinning} of 10)`);
  t.ok(heartbeatsWhileSpinning >= 5, `worker heartbeats went on while the loop ran (${heartbeatsWhileSpinning})`);
  t.equal(receivedSpin, 1, 'its lease was renewed: the task was never redelivered');
  t.equal((await stem.status(spin.id)).attempt, 0);
  t.equal(plugin.stats().thread?.crashed, 0);
});

for (const pool of ['threads', 'processes'] as const) {
  t.test(
    `${pool}: a hard time limit terminates a CPU-bound handler; the attempt retries, then fails typed; the next task runs`,
    async (t) => {
      // Two warm children: the limit counts from the start of the attempt, a wait for a child included.
      const { stem, plugin } = await setUp(t, { pool, min: 2 });
      const mode = pool === 'threads' ? 'thread' : 'process';
      await waitFor(() => plugin.stats()[mode]!.alive >= 2, 'two warm children', 120_000);
      let retried = 0;
      stem.signals.on('task-retried', ({ envelope }) => {
        if (envelope.name === 'iso.forever') retried++;
      });
      const stuck = await stem.enqueue(isolated.forever, {}, { timeLimit: '300ms', maxRetries: 1, retryPolicy: { delayMs: 10 } });
      const failed = await failure(stem, stuck);
      t.equal(failed.error.type, 'TimeLimitExceededError');
      t.match(failed.error.message, /hard time limit of 300ms/);
      t.equal(retried, 1, 'the first attempt was retried per its policy');
      t.equal((await stem.broker.getDeadLetter('default', stuck.id))?.reason, 'max-retries-exhausted');
      t.equal(plugin.stats()[mode]?.terminated, 2, 'both attempts had their child terminated');
      const next = await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 });
      t.match(next, new RegExp(`^${mode}:`), 'the next task ran on a fresh child');
    },
  );

  t.test(`${pool}: a child that exits or throws outside the handler fails only its task, and is replaced`, async (t) => {
    const { stem, plugin } = await setUp(t, { pool, min: 2 });
    const mode = pool === 'threads' ? 'thread' : 'process';
    const [exited, threw, fine] = await Promise.all([
      failure(stem, await stem.enqueue(isolated.exits, {})),
      failure(stem, await stem.enqueue(isolated.throwsLater, {})),
      (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 }),
    ]);
    t.equal(exited.error.type, 'IsolatedChildExitedError');
    t.match(exited.error.message, `the ${mode} running task`);
    t.match(exited.error.message, 'exited with code 3');
    t.equal(threw.error.type, 'TaskAsyncError');
    t.match(threw.error.message, 'TypeError: thrown from a timer');
    t.match(fine, new RegExp(`^${mode}:`), 'a task beside them succeeded');
    t.equal(plugin.stats()[mode]?.crashed, 2);
    await waitFor(() => plugin.stats()[mode]!.alive >= 2, 'the pool to be back at its minimum', 120_000);
    t.match(await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 }), new RegExp(`^${mode}:`));
  });

  t.test(`${pool}: maxTasksPerChild 5 over 20 tasks: 4 children ran them`, async (t) => {
    const { stem, plugin } = await setUp(t, { pool, maxTasksPerChild: 5 }, { concurrency: 1 });
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) seen.push(await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 }));
    t.equal(new Set(seen).size, 4, `children: ${[...new Set(seen)].join(', ')}`);
    for (let i = 0; i < 20; i += 5) t.equal(new Set(seen.slice(i, i + 5)).size, 1, `tasks ${i + 1}-${i + 5} ran on one child`);
    t.equal(plugin.stats()[pool === 'threads' ? 'thread' : 'process']?.recycledMaxTasks, 4);
  });

  t.test(`${pool}: progress, heartbeat, a child task's enqueue and result, softSignal and typed errors cross the boundary`, async (t) => {
    const { stem } = await setUp(t, { pool });
    const parent = await stem.enqueue(isolated.parent, { a: 2, b: 3 }, { headers: { tenant: 'acme' } });
    const result = await parent.result({ timeoutMs: 120_000 });
    t.equal(result.sum, 5, "the child task's result came back through ctx.enqueue's handle");
    t.same(result.seen, { id: parent.id, name: 'iso.parent', attempt: 0, tenant: 'acme' }, 'ctx carried id, name, attempt and headers');
    t.equal((await stem.status(result.childId)).state, 'succeeded');
    t.same((await stem.status(parent.id)).progress, { step: 'enqueueing' }, 'progress reached the backend');

    t.equal(await (await stem.enqueue(isolated.gentle, {})).result({ timeoutMs: 120_000 }), 'wrapped up after SoftTimeLimitExceededError');

    const declined = await failure(stem, await stem.enqueue(isolated.declines, { amount: 12 }));
    t.equal(declined.error.type, 'PaymentDeclined');
    t.equal(declined.error.message, 'card declined for 12');
    t.equal(declined.error.code, 'card-declined');
    t.match(declined.error.stack, /isolated-tasks\.ts/, "the stack is the child's, pointing at the handler");

    const notRetried = await stem.enqueue(
      isolated.declines,
      { amount: 1 },
      { maxRetries: 3, retryPolicy: { dontRetryOn: ['PaymentDeclined'] } },
    );
    await failure(stem, notRetried);
    t.equal((await stem.broker.getDeadLetter('default', notRetried.id))?.reason, 'unrecoverable', 'retry policies match the error by name');

    t.equal(
      await (await stem.enqueue(isolated.flaky, {})).result({ timeoutMs: 120_000 }),
      'attempt 1',
      'Retry thrown in the child asks for another attempt',
    );
  });
}

t.test('processes: a child killed with SIGKILL mid-task fails that attempt; the retry runs and nothing is lost', async (t) => {
  const { stem, plugin } = await setUp(t, { pool: 'processes', min: 1 });
  let started = false;
  stem.signals.on('task-started', ({ envelope }) => {
    if (envelope.name === 'iso.victim' && envelope.attempt === 0) started = true;
  });
  const victim = await stem.enqueue(isolated.victim, {}, { maxRetries: 1, retryPolicy: { delayMs: 10 } });
  await waitFor(() => started && plugin.stats().process!.busy === 1, 'the first attempt to run', 120_000);
  const [running] = plugin.stats().process!.running;
  process.kill(Number(running!.slice('process:'.length)), 'SIGKILL');
  t.equal(await victim.result({ timeoutMs: 60_000 }), 'survived on attempt 1');
  const history = await stem.status(victim.id);
  t.equal(history.attempt, 1);
  t.equal(plugin.stats().process?.crashed, 1);
});

t.test('threads: a child over maxMemoryPerChild after a task is replaced before the next', async (t) => {
  const { stem, plugin } = await setUp(t, { pool: 'threads', maxMemoryPerChild: '96MB' }, { concurrency: 1 });
  const first = await (await stem.enqueue(isolated.hoard, { mb: 8 }, {})).result({ timeoutMs: 120_000 });
  const second = await (await stem.enqueue(isolated.hoard, { mb: 120 }, {})).result({ timeoutMs: 120_000 });
  const third = await (await stem.enqueue(isolated.hoard, { mb: 1 }, {})).result({ timeoutMs: 120_000 });
  t.equal(first, second, 'under the bound the child is kept');
  t.not(third, second, 'over it, the next task ran on a new child');
  t.equal(plugin.stats().thread?.recycledMaxMemory, 1);
});

t.test("a task's own isolate option without a module is refused when the plugin is applied, naming the fix", async (t) => {
  const { defineTask } = await import('../../sdk/index.js');
  const orphan = defineTask({ name: 'iso.orphan', options: { isolate: 'thread' }, handler: () => 1 });
  await t.rejects(Stem.create({ tasks: [orphan], plugins: [isolation()] }), /handlerModule: import\.meta\.url/);
  t.throws(() => isolation({ maxMemoryPerChild: 'lots' }), /"256MB"/);
  t.throws(() => isolation({ pool: 'forks' as never }), /"threads" or "processes"/);
});

t.test('a task with isolate: "thread" runs in a thread without a worker-wide pool; others stay on the loop', async (t) => {
  const { defineTask } = await import('../../sdk/index.js');
  const inThread = defineTask({
    name: 'iso.whoami',
    options: { isolate: 'thread', handlerModule: new URL('./isolated-tasks.ts', import.meta.url) },
    handler: () => 'in the loop',
  });
  const onLoop = defineTask({ name: 'iso.loop', handler: () => 'in the loop' });
  const stem = await Stem.create({ tasks: [inThread, onLoop], plugins: [isolation({ min: 0 })] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  t.match(await (await stem.enqueue(inThread, {})).result({ timeoutMs: 120_000 }), /^thread:/);
  t.equal(await (await stem.enqueue(onLoop, {})).result({ timeoutMs: 120_000 }), 'in the loop');
});

t.test('threads: revoke with terminate and a hard stop terminate the child running the task', async (t) => {
  const { stem, plugin, worker } = await setUp(t, { pool: 'threads', min: 2 });
  await waitFor(() => plugin.stats().thread!.alive >= 2, 'two warm children', 120_000);
  const running = new Set<string>();
  stem.signals.on('task-started', ({ envelope }) => running.add(envelope.id));

  const revoked = await stem.enqueue(isolated.forever, {});
  await waitFor(() => running.has(revoked.id) && plugin.stats().thread!.busy === 1, 'the task to run', 120_000);
  t.ok(worker.terminate(revoked.id, 'wrong input'));
  await waitFor(async () => (await stem.status(revoked.id)).state === 'cancelled', 'the task to be cancelled', 120_000);
  t.equal(plugin.stats().thread?.terminated, 1, 'its thread was terminated');

  const stopped = await stem.enqueue(isolated.forever, {});
  await waitFor(() => running.has(stopped.id) && plugin.stats().thread!.busy === 1, 'the task to run', 120_000);
  await worker.stop({ graceMs: 0 });
  t.equal((await stem.status(stopped.id)).state, 'queued', 'a hard stop returned the task to its queue');
  t.equal(plugin.stats().thread?.terminated, 2, 'and terminated its thread');
});

t.test('threads: with abortGrace, a handler that gives up on ctx.signal keeps its child', async (t) => {
  const { stem, plugin, worker } = await setUp(t, { pool: 'threads', abortGrace: '10s' });
  let started = false;
  stem.signals.on('task-started', ({ envelope }) => {
    if (envelope.name === 'iso.cooperative') started = true;
  });
  const handle = await stem.enqueue(isolated.cooperative, {});
  await waitFor(() => started && plugin.stats().thread!.busy === 1, 'the task to run', 120_000);
  worker.terminate(handle.id);
  await waitFor(() => plugin.stats().thread!.busy === 0, 'the handler to give up', 120_000);
  t.equal((await stem.status(handle.id)).state, 'cancelled');
  const before = plugin.stats().thread!;
  t.equal(before.terminated, 0, 'no child was terminated');
  t.equal(
    await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 }),
    before.children.at(-1),
    'the same child ran the next task',
  );
});
