import t from 'tap';
import { Retry, Stem, TaskFailedError, Unrecoverable, defineTask, type TaskDefinition } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';

async function withStem(tasks: TaskDefinition[], body: (stem: Stem) => Promise<void>): Promise<void> {
  const stem = await Stem.create({ tasks });
  try {
    await body(stem);
  } finally {
    await stem.close();
  }
}

t.test('a task runs on a worker and its result is typed and stored', async (t) => {
  const add = defineTask({ name: 'math.add', handler: async (args: { a: number; b: number }) => args.a + args.b });
  await withStem([add], async (stem) => {
    const worker = stem.worker({ queues: ['default'], concurrency: 2 });
    await worker.start();
    const handle = await stem.enqueue(add, { a: 1, b: 2 });
    const sum: number = await handle.result({ timeoutMs: 60_000 });
    t.equal(sum, 3);
    const status = await stem.status(handle.id);
    t.equal(status.state, 'succeeded');
    t.equal(status.name, 'math.add');
    t.equal(status.attempt, 0);
    t.equal(status.workerId, worker.id);
  });
});

t.test('a failing task is retried with backoff until it succeeds', async (t) => {
  const seen: number[] = [];
  const flaky = defineTask({
    name: 'flaky',
    options: { maxRetries: 3, retryPolicy: { delayMs: 20 } },
    handler: async (_args: Record<string, never>, ctx) => {
      seen.push(ctx.attempt);
      if (ctx.attempt < 2) throw new Error(`boom ${ctx.attempt}`);
      return 'done';
    },
  });
  await withStem([flaky], async (stem) => {
    const retried: number[] = [];
    stem.signals.on('task-retried', ({ delayMs }) => retried.push(delayMs));
    const worker = stem.worker();
    await worker.start();
    const handle = await stem.enqueue(flaky, {});
    t.equal(await handle.result({ timeoutMs: 60_000 }), 'done');
    t.same(seen, [0, 1, 2], 'attempts 0, 1 and 2 ran');
    t.equal(retried.length, 2);
    // Exponential with jitter: the second delay's range (20..40ms) starts where the first's (10..20ms) ends.
    t.ok(retried[0]! >= 10 && retried[0]! <= 20, `first delay ${retried[0]} is within 10..20ms`);
    t.ok(retried[1]! >= 20 && retried[1]! <= 40, `second delay ${retried[1]} is within 20..40ms`);
    t.equal((await stem.status(handle.id)).attempt, 2);
  });
});

t.test('exhausted retries dead-letter the task with reason max-retries-exhausted and state failed', async (t) => {
  const failing = defineTask({
    name: 'always.fails',
    options: { maxRetries: 1, retryPolicy: { delayMs: 5 } },
    handler: async () => {
      throw new TypeError('bad input');
    },
  });
  await withStem([failing], async (stem) => {
    const worker = stem.worker();
    await worker.start();
    const handle = await stem.enqueue(failing, {});
    await t.rejects(handle.result({ timeoutMs: 60_000 }), TaskFailedError);
    const status = await stem.status(handle.id);
    t.equal(status.state, 'failed');
    t.equal(status.error?.type, 'TypeError');
    t.equal(status.error?.message, 'bad input');
    t.equal(status.attempt, 1);
    const dead = await stem.broker.getDeadLetter('default', handle.id);
    t.equal(dead?.reason, 'max-retries-exhausted');
    t.equal((dead!.meta.error as { message: string }).message, 'bad input');
  });
});

t.test('Unrecoverable fails at once; Retry sets its own countdown', async (t) => {
  let retryAttempts = 0;
  const fatal = defineTask({
    name: 'fatal',
    options: { maxRetries: 5 },
    handler: async () => {
      throw new Unrecoverable('card declined');
    },
  });
  const polite = defineTask({
    name: 'polite',
    options: { maxRetries: 2 },
    handler: async (_args: object, ctx) => {
      retryAttempts++;
      if (ctx.attempt === 0) throw new Retry({ countdownMs: 30, reason: 'upstream busy' });
      return 'ok';
    },
  });
  await withStem([fatal, polite], async (stem) => {
    const delays: number[] = [];
    stem.signals.on('task-retried', ({ delayMs }) => delays.push(delayMs));
    await stem.worker().start();
    const fatalHandle = await stem.enqueue(fatal, {});
    await t.rejects(fatalHandle.result({ timeoutMs: 60_000 }), /card declined/);
    t.equal((await stem.status(fatalHandle.id)).attempt, 0, 'no retry happened');
    t.equal((await stem.broker.getDeadLetter('default', fatalHandle.id))?.reason, 'unrecoverable');
    t.equal(await (await stem.enqueue(polite, {})).result({ timeoutMs: 60_000 }), 'ok');
    t.equal(retryAttempts, 2);
    t.same(delays, [30]);
  });
});

t.test('retryOn and dontRetryOn choose which errors are retried', async (t) => {
  class Transient extends Error {}
  let attempts = 0;
  const picky = defineTask({
    name: 'picky',
    options: { maxRetries: 3, retryPolicy: { delayMs: 1, retryOn: [Transient] } },
    handler: async (_a: object, ctx) => {
      attempts++;
      if (ctx.attempt === 0) throw new Transient('flap');
      throw new RangeError('permanent');
    },
  });
  await withStem([picky], async (stem) => {
    await stem.worker().start();
    const handle = await stem.enqueue(picky, {});
    await t.rejects(handle.result({ timeoutMs: 60_000 }), /permanent/);
    t.equal(attempts, 2, 'the Transient error was retried, the RangeError was not');
  });
});

t.test('a task name no worker knows is dead-lettered as unregistered-task and the worker goes on', async (t) => {
  const known = defineTask({ name: 'known', handler: async () => 'ran' });
  await withStem([known], async (stem) => {
    // A producer without a registry may enqueue any name; this worker does not know it.
    await stem.broker.publish([
      {
        id: 'orphan-1',
        name: 'nobody.knows',
        args: {},
        headers: {},
        queue: 'default',
        priority: 5,
        attempt: 0,
        maxRetries: 0,
        visibilityTimeoutMs: 30_000,
        createdAt: Date.now(),
        meta: {},
      },
    ]);
    await stem.worker().start();
    await waitFor(async () => (await stem.broker.getDeadLetter('default', 'orphan-1')) !== null, 'the dead letter');
    const dead = await stem.broker.getDeadLetter('default', 'orphan-1');
    t.equal(dead?.reason, 'unregistered-task');
    t.equal((await stem.status('orphan-1')).state, 'failed');
    t.equal(await (await stem.enqueue(known, {})).result({ timeoutMs: 60_000 }), 'ran');
  });
});
