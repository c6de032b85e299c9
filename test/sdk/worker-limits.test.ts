import t from 'tap';
import { Stem, TaskCancelledError, TimeLimitExceededError, defineTask } from '../../sdk/index.js';
import { sleep, waitFor } from '../helpers/wait.js';

t.test('the hard time limit aborts ctx.signal and fails the attempt', async (t) => {
  let abortReason: unknown;
  const stuck = defineTask({
    name: 'stuck',
    options: { timeLimit: '50ms' },
    handler: async (_a: object, ctx) => {
      ctx.signal.addEventListener('abort', () => (abortReason = ctx.signal.reason));
      await new Promise(() => undefined); // never returns
    },
  });
  const stem = await Stem.create({ tasks: [stuck] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  const handle = await stem.enqueue(stuck, {});
  await t.rejects(handle.result({ timeoutMs: 60_000 }), /hard time limit of 50ms/);
  t.ok(abortReason instanceof TimeLimitExceededError, 'ctx.signal was aborted with TimeLimitExceededError');
  t.equal((await stem.broker.getDeadLetter('default', handle.id))?.reason, 'max-retries-exhausted');
});

t.test('a per-enqueue time limit overrides the task option', async (t) => {
  const slow = defineTask({
    name: 'slow',
    handler: async (_a: object, ctx) => {
      await sleep(200);
      return ctx.signal.aborted ? 'aborted' : 'finished';
    },
  });
  const stem = await Stem.create({ tasks: [slow] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  const limited = await stem.enqueue(slow, {}, { timeLimit: 20 });
  await t.rejects(limited.result({ timeoutMs: 60_000 }), /TimeLimitExceededError/);
  t.equal(await (await stem.enqueue(slow, {})).result({ timeoutMs: 60_000 }), 'finished');
});

t.test('the soft time limit aborts ctx.softSignal and lets the handler finish', async (t) => {
  const careful = defineTask({
    name: 'careful',
    options: { softTimeLimit: 20 },
    handler: async (_a: object, ctx) => {
      await new Promise((resolve) => ctx.softSignal.addEventListener('abort', resolve));
      return `wrapped up after ${(ctx.softSignal.reason as Error).name}`;
    },
  });
  const stem = await Stem.create({ tasks: [careful] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  t.equal(await (await stem.enqueue(careful, {})).result({ timeoutMs: 60_000 }), 'wrapped up after SoftTimeLimitExceededError');
});

t.test('ctx.progress is readable from the backend while the task runs', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const report = defineTask({
    name: 'report',
    handler: async (_a: object, ctx) => {
      await ctx.progress({ done: 1, of: 2 });
      await ctx.heartbeat();
      await gate;
      return 'ok';
    },
  });
  const stem = await Stem.create({ tasks: [report] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  const handle = await stem.enqueue(report, {});
  await waitFor(async () => (await stem.status(handle.id)).progress !== undefined, 'progress');
  const running = await stem.status(handle.id);
  t.equal(running.state, 'running');
  t.same(running.progress, { done: 1, of: 2 });
  release();
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'ok');
  t.same((await stem.status(handle.id)).progress, { done: 1, of: 2 }, 'the final status keeps the last progress');
});

t.test('a handler that throws a non-Error fails with a readable message', async (t) => {
  const odd = defineTask({
    name: 'odd',
    handler: async () => {
      throw { code: 42 };
    },
  });
  const stem = await Stem.create({ tasks: [odd] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  const handle = await stem.enqueue(odd, {});
  await t.rejects(handle.result({ timeoutMs: 60_000 }));
  const status = await stem.status(handle.id);
  t.equal(status.error?.type, 'NonErrorThrown');
  t.match(status.error?.message, /\{"code":42\}/);
});

t.test('no more than `concurrency` tasks run at once, and that many do', async (t) => {
  let running = 0;
  let peak = 0;
  const busy = defineTask({
    name: 'busy',
    handler: async () => {
      running++;
      peak = Math.max(peak, running);
      // Each task stays until four ran at once (or a ceiling only a worker that never runs four reaches): with a fixed
      // 30 ms, a machine slower to start the next task than to finish one never saw four at once.
      const deadline = Date.now() + 30_000;
      while (peak < 4 && Date.now() < deadline) await sleep(5);
      await sleep(30);
      running--;
    },
  });
  const stem = await Stem.create({ tasks: [busy] });
  t.teardown(() => stem.close());
  const handles = await stem.enqueueMany(Array.from({ length: 20 }, () => ({ task: busy, args: {} })));
  await stem.worker({ concurrency: 4 }).start();
  for (const handle of handles) await handle.result({ timeoutMs: 60_000 });
  t.equal(peak, 4);
});

t.test('a worker consumes several queues; a task on an unconsumed queue waits', async (t) => {
  const echo = defineTask({ name: 'echo', handler: async (args: { v: string }, ctx) => `${ctx.queue}:${args.v}` });
  const stem = await Stem.create({ tasks: [echo] });
  t.teardown(() => stem.close());
  await stem.worker({ queues: ['reports', 'emails'] }).start();
  t.equal(await (await stem.enqueue(echo, { v: 'a' }, { queue: 'reports' })).result({ timeoutMs: 60_000 }), 'reports:a');
  t.equal(await (await stem.enqueue(echo, { v: 'b' }, { queue: 'emails' })).result({ timeoutMs: 60_000 }), 'emails:b');
  const other = await stem.enqueue(echo, { v: 'c' }, { queue: 'other' });
  await sleep(50);
  t.equal((await stem.status(other.id)).state, 'queued');
  t.equal(await stem.broker.pending('other'), 1);
});

t.test('an expired task is cancelled instead of run', async (t) => {
  let ran = false;
  const late = defineTask({
    name: 'late',
    handler: async () => {
      ran = true;
    },
  });
  const stem = await Stem.create({ tasks: [late] });
  t.teardown(() => stem.close());
  const handle = await stem.enqueue(late, {}, { expiresAt: new Date(Date.now() + 10) });
  await sleep(30);
  await stem.worker().start();
  await t.rejects(handle.result({ timeoutMs: 60_000 }), TaskCancelledError);
  t.equal(ran, false);
  t.match((await stem.status(handle.id)).error?.message, /expired/);
});

t.test('graceful stop waits for running tasks; they succeed and nothing is left', async (t) => {
  const steady = defineTask({
    name: 'steady',
    handler: async () => {
      await sleep(100);
      return 'finished';
    },
  });
  const stem = await Stem.create({ tasks: [steady] });
  t.teardown(() => stem.close());
  const worker = stem.worker({ concurrency: 2 });
  await worker.start();
  const handles = [await stem.enqueue(steady, {}), await stem.enqueue(steady, {})];
  await waitFor(() => worker.stats().inflight === 2, 'both tasks to start');
  await worker.stop({ graceMs: 60_000 });
  for (const handle of handles) t.equal((await stem.status(handle.id)).state, 'succeeded');
  t.equal(await stem.broker.inflight('default'), 0);
  t.equal(await stem.broker.pending('default'), 0);
});

t.test('a stop past the grace period aborts running tasks and returns them to the queue: nothing is lost', async (t) => {
  let runs = 0;
  const long = defineTask({
    name: 'long',
    handler: async (_a: object, ctx) => {
      runs++;
      if (runs === 1) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      return `run ${runs}`;
    },
  });
  const stem = await Stem.create({ tasks: [long] });
  t.teardown(() => stem.close());
  const first = stem.worker();
  await first.start();
  const handle = await stem.enqueue(long, {});
  await waitFor(() => runs === 1, 'the task to start');
  await first.stop({ graceMs: 20 });
  const returned = await stem.status(handle.id);
  t.equal(returned.state, 'queued', 'back to queued');
  t.equal(returned.generation, 1, 'the return is a new generation, so its queued passes the running it replaces');
  t.equal(await stem.broker.pending('default'), 1, 'back in the queue');
  await stem.worker().start();
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'run 2');
});

t.test('signals report the life of a task and of a worker', async (t) => {
  const ok = defineTask({ name: 'ok', handler: async () => 1 });
  const stem = await Stem.create({ tasks: [ok] });
  t.teardown(() => stem.close());
  const seen: string[] = [];
  for (const name of [
    'task-received',
    'task-started',
    'task-succeeded',
    'worker-ready',
    'worker-stopping',
    'worker-shutdown',
    'worker-heartbeat',
  ] as const) {
    stem.signals.on(name, () => seen.push(name));
  }
  const worker = stem.worker();
  await worker.start();
  await (await stem.enqueue(ok, {})).result({ timeoutMs: 60_000 });
  await worker.stop();
  t.same(seen, [
    'worker-heartbeat',
    'worker-ready',
    'task-received',
    'task-started',
    'task-succeeded',
    'worker-stopping',
    'worker-shutdown',
  ]);
  t.same(
    (await stem.backend.listWorkers()).map((beat) => beat.workerId),
    [worker.id],
    'the worker reported a heartbeat',
  );
});
