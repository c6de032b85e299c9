import t from 'tap';
import { TaskFailedError, Unrecoverable, defineTask } from '../../sdk/index.js';
import { canvasOf, chordFailures, parentResult, task, type GroupResult } from '../../plugins/canvas/index.js';
import { emailReceipt, renderReport, resizeImage } from '../../fixtures/tasks.js';
import { waitFor } from '../helpers/wait.js';
import { CallCounter, availableBackends, openCluster } from './canvas-harness.js';

const RESULT_TIMEOUT = { timeoutMs: 60_000 };

/** Waits until group `id` has every member terminal, and returns it. */
async function settledGroup(read: (id: string) => Promise<GroupResult | null>, id: string): Promise<GroupResult> {
  let group: GroupResult | null = null;
  await waitFor(async () => (group = await read(id))?.done === true, `group ${id} to finish`, 60_000);
  return group!;
}

for (const backend of await availableBackends(t)) {
  t.test(`${backend}: a chain of three hands each result to the next step and ends with the last result`, async (t) => {
    const seen: unknown[] = [];
    const start = defineTask({ name: 'chain.start', handler: async (args: { x: number }) => args.x + 1 });
    const double = defineTask({
      name: 'chain.double',
      handler: async (args: { parent?: number }, ctx) => {
        seen.push(parentResult(ctx));
        return args.parent! * 2;
      },
    });
    const offset = defineTask({ name: 'chain.offset', handler: async (args: { by: number; parent?: number }) => args.parent! + args.by });
    const cluster = await openCluster(t, backend, [start, double, offset]);
    await cluster.startWorker();
    const chainId = await canvasOf(cluster.stem).chain([task(start, { x: 1 }), task(double, {}), task(offset, { by: 100 })]);
    t.equal(await cluster.stem.handle<number>(chainId).result(RESULT_TIMEOUT), 104, '(1 + 1) * 2 + 100');
    t.same(seen, [2], 'step 2 read the parent result through parentResult(ctx)');
    const status = await cluster.stem.status(chainId);
    t.equal(status.state, 'succeeded');
    const steps = (status.meta!['stem.chain'] as { steps: Array<{ id: string; name: string }> }).steps;
    t.same(
      steps.map((step) => step.name),
      ['chain.start', 'chain.double', 'chain.offset'],
      'the chain record lists its steps',
    );
    // A step's own state is written just after the hand-off, so the chain may finish first.
    await waitFor(async () => (await cluster.stem.status(steps[1]!.id)).state === 'succeeded', 'step 2 to record its own state');
    t.equal((await cluster.stem.status(steps[1]!.id)).result, 4, "each step's own task id holds its result");
  });

  t.test(`${backend}: a failed middle step stops the chain, and the chain records which step failed`, async (t) => {
    let thirdRan = 0;
    const first = defineTask({ name: 'stop.first', handler: async () => 'ok' });
    const second = defineTask({
      name: 'stop.second',
      handler: async () => {
        throw new Unrecoverable('card declined');
      },
    });
    const third = defineTask({
      name: 'stop.third',
      handler: async () => {
        thirdRan++;
        return 'never';
      },
    });
    const cluster = await openCluster(t, backend, [first, second, third]);
    await cluster.startWorker();
    const chainId = await canvasOf(cluster.stem).chain([task(first, {}), task(second, {}), task(third, {})]);
    const error = await cluster.stem
      .handle(chainId)
      .result(RESULT_TIMEOUT)
      .catch((e: unknown) => e);
    t.type(error, TaskFailedError);
    t.match((error as Error).message, /step 2 of 3 \(stop\.second, task [0-9a-f-]+\) failed: Unrecoverable: card declined/);
    const status = await cluster.stem.status(chainId);
    t.equal(status.state, 'failed');
    t.equal(status.error?.type, 'ChainStepFailedError');
    const detail = status.meta?.['stem.chain'] as { failedStep: number; failedTaskId: string; steps: Array<{ id: string }> };
    t.equal(detail.failedStep, 1, 'the second step (index 1) is named');
    t.equal(detail.failedTaskId, detail.steps[1]!.id);
    t.equal((await cluster.stem.status(detail.steps[2]!.id)).state, 'pending', 'step 3 was never enqueued');
    t.equal(thirdRan, 0);
  });

  t.test(`${backend}: an immutable step ignores its parent's result`, async (t) => {
    const received: unknown[] = [];
    const produce = defineTask({ name: 'imm.produce', handler: async () => 'parent value' });
    const consume = defineTask({
      name: 'imm.consume',
      handler: async (args: { tag: string; parent?: unknown }, ctx) => {
        received.push({ args, parent: parentResult(ctx) ?? 'none' });
        return args.tag;
      },
    });
    const cluster = await openCluster(t, backend, [produce, consume]);
    await cluster.startWorker();
    const c = canvasOf(cluster.stem);
    const viaMethod = await c.chain([task(produce, {}), task(consume, { tag: 'method' }).immutable()]);
    t.equal(await cluster.stem.handle(viaMethod).result(RESULT_TIMEOUT), 'method');
    const viaOption = await c.chain([task(produce, {}), task(consume, { tag: 'option' }, { immutable: true })]);
    t.equal(await cluster.stem.handle(viaOption).result(RESULT_TIMEOUT), 'option');
    t.same(received, [
      { args: { tag: 'method' }, parent: 'none' },
      { args: { tag: 'option' }, parent: 'none' },
    ]);
  });

  t.test(`${backend}: a group runs its members and gives states, completed count and results in member order`, async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const square = defineTask({
      name: 'group.square',
      handler: async (args: { n: number; wait?: boolean }) => {
        if (args.wait) await gate;
        return args.n * args.n;
      },
    });
    const cluster = await openCluster(t, backend, [square]);
    await cluster.startWorker({ concurrency: 8 });
    const c = canvasOf(cluster.stem);
    // The first member is held back, so the others finish before it: order must not come from finishing order.
    const { groupId, taskIds } = await c.group([
      task(square, { n: 1, wait: true }),
      task(square, { n: 2 }),
      task(square, { n: 3 }),
      task(square, { n: 4 }),
    ]);
    t.equal(taskIds.length, 4);
    await waitFor(async () => (await c.groupResult(groupId))?.completed === 3, 'three members to finish');
    const partial = (await c.groupResult(groupId))!;
    t.equal(partial.done, false);
    t.same(partial.results, [undefined, 4, 9, 16]);
    t.same(partial.states.slice(1), ['succeeded', 'succeeded', 'succeeded']);
    t.not(partial.states[0], 'succeeded');
    release();
    const group = await settledGroup((id) => c.groupResult(id), groupId);
    t.same(group.results, [1, 4, 9, 16]);
    t.equal(group.completed, 4);
    t.equal(group.expected, 4);
    t.same(group.taskIds, taskIds);
    t.equal(await c.groupResult('no-such-group'), null, 'an unknown group reads as null');
  });

  t.test(`${backend}: a chord fires its callback exactly once with the results in member order`, async (t) => {
    const calls = new CallCounter();
    const gates: Array<() => void> = [];
    const part = defineTask({
      name: 'chord.part',
      handler: async (args: { n: number }) => {
        // Members finish in reverse order of the body.
        await new Promise<void>((resolve) => (gates[args.n] = resolve));
        return `part-${args.n}`;
      },
    });
    const collect = defineTask({
      name: 'chord.collect',
      handler: async (args: { label: string; parent?: string[] }, ctx) => {
        calls.hit(ctx.id);
        t.same(parentResult(ctx), args.parent, 'the results are in ctx meta and in args');
        return `${args.label}: ${args.parent!.join(',')}`;
      },
    });
    const cluster = await openCluster(t, backend, [part, collect]);
    await cluster.startWorker({ concurrency: 8 });
    const c = canvasOf(cluster.stem);
    const chordId = await c.chord({ body: [0, 1, 2, 3, 4].map((n) => task(part, { n })), callback: task(collect, { label: 'all' }) });
    t.equal((await cluster.stem.status(chordId)).state, 'pending', 'the chord reads as pending while its body runs');
    await waitFor(() => gates.filter(Boolean).length === 5, 'every member to start');
    for (const n of [4, 3, 2, 1, 0]) {
      gates[n]!();
      await waitFor(async () => (await c.groupResult(chordId))!.completed === 5 - n, `member ${n} to record`);
    }
    t.equal(await cluster.stem.handle(chordId).result(RESULT_TIMEOUT), 'all: part-0,part-1,part-2,part-3,part-4');
    const body = await settledGroup((id) => c.groupResult(id), chordId);
    t.same(body.results, ['part-0', 'part-1', 'part-2', 'part-3', 'part-4'], 'the chord id is also the body group id');
    t.equal(calls.of(chordId), 1, 'the callback ran once, under the chord id');
    t.equal(calls.size, 1);
  });

  t.test(`${backend}: a failed member fails the chord with an error naming it, and the callback does not run`, async (t) => {
    const calls = new CallCounter();
    const member = defineTask({
      name: 'fail.member',
      handler: async (args: { n: number }) => {
        if (args.n === 1) throw new TypeError('week 29 has no data');
        return args.n;
      },
    });
    const callback = defineTask({ name: 'fail.callback', handler: async (_args: object, ctx) => calls.hit(ctx.id) });
    const cluster = await openCluster(t, backend, [member, callback]);
    await cluster.startWorker();
    const c = canvasOf(cluster.stem);
    const chordId = await c.chord({ body: [0, 1, 2].map((n) => task(member, { n })), callback: task(callback, {}) });
    const error = await cluster.stem
      .handle(chordId)
      .result(RESULT_TIMEOUT)
      .catch((e: unknown) => e);
    t.type(error, TaskFailedError);
    t.match((error as Error).message, /member 2 of 3 \(fail\.member, task [0-9a-f-]+\) failed: TypeError: week 29 has no data/);
    const body = await settledGroup((id) => c.groupResult(id), chordId);
    t.same(body.states, ['succeeded', 'failed', 'succeeded']);
    const status = await cluster.stem.status(chordId);
    t.equal(status.state, 'failed');
    t.equal(status.name, 'fail.callback', 'the chord record is the callback that did not run');
    t.same(status.meta?.['stem.chord'], { failedMember: 1, failedTaskId: body.taskIds[1] });
    t.equal(calls.size, 0, 'the callback never ran');
  });

  t.test(`${backend}: with onError 'continue' the callback runs with partial results and the failures`, async (t) => {
    const member = defineTask({
      name: 'cont.member',
      handler: async (args: { n: number }) => {
        if (args.n === 1) throw new Error('no thumbnail');
        return args.n * 10;
      },
    });
    const callback = defineTask({
      name: 'cont.callback',
      handler: async (args: { parent?: Array<number | null> }, ctx) => ({
        results: args.parent,
        failures: chordFailures(ctx).map((f) => [f.index, f.state, f.error.message]),
      }),
    });
    const cluster = await openCluster(t, backend, [member, callback]);
    await cluster.startWorker();
    const chordId = await canvasOf(cluster.stem).chord({
      body: [0, 1, 2].map((n) => task(member, { n })),
      callback: task(callback, {}),
      onError: 'continue',
    });
    t.same(await cluster.stem.handle(chordId).result(RESULT_TIMEOUT), {
      results: [0, null, 20],
      failures: [[1, 'failed', 'no thumbnail']],
    });
  });

  t.test(`${backend}: a member retried twice before it succeeds counts once, and the callback runs once`, async (t) => {
    const calls = new CallCounter();
    const attempts: number[] = [];
    const flaky = defineTask({
      name: 'retry.flaky',
      options: { maxRetries: 2, retryPolicy: { delayMs: 5, maxDelayMs: 10 } },
      handler: async (args: { n: number }, ctx) => {
        if (args.n === 0) {
          attempts.push(ctx.attempt);
          if (ctx.attempt < 2) throw new Error(`transient ${ctx.attempt}`);
        }
        return args.n;
      },
    });
    const callback = defineTask({
      name: 'retry.callback',
      handler: async (args: { parent?: number[] }, ctx) => {
        calls.hit(ctx.id);
        return args.parent;
      },
    });
    const cluster = await openCluster(t, backend, [flaky, callback]);
    await cluster.startWorker();
    const c = canvasOf(cluster.stem);
    const chordId = await c.chord({ body: [0, 1, 2].map((n) => task(flaky, { n })), callback: task(callback, {}) });
    t.same(await cluster.stem.handle(chordId).result(RESULT_TIMEOUT), [0, 1, 2]);
    t.same(attempts, [0, 1, 2], 'the member ran three attempts');
    const body = (await c.groupResult(chordId))!;
    t.equal(body.completed, 3, 'retries did not count as completions');
    t.equal(calls.of(chordId), 1);
  });

  t.test(`${backend}: 50 chords of 4 members on 2 concurrent workers each fire their callback exactly once`, async (t) => {
    const calls = new CallCounter();
    const member = defineTask({
      name: 'race.member',
      handler: async (args: { chord: number; n: number }) => {
        // Let members of one chord finish close together, on both workers.
        await new Promise((resolve) => setImmediate(resolve));
        return args.chord * 10 + args.n;
      },
    });
    const callback = defineTask({
      name: 'race.callback',
      handler: async (args: { parent?: number[] }, ctx) => {
        calls.hit(ctx.id);
        return args.parent;
      },
    });
    const cluster = await openCluster(t, backend, [member, callback]);
    await cluster.startWorker({ concurrency: 8 });
    await cluster.startWorker({ concurrency: 8 });
    const c = canvasOf(cluster.stem);
    const chordIds = await Promise.all(
      Array.from({ length: 50 }, (_, chord) =>
        c.chord({ body: [0, 1, 2, 3].map((n) => task(member, { chord, n })), callback: task(callback, {}) }),
      ),
    );
    const results = await Promise.all(chordIds.map((id) => cluster.stem.handle(id).result(RESULT_TIMEOUT)));
    t.same(
      results,
      chordIds.map((_, chord) => [0, 1, 2, 3].map((n) => chord * 10 + n)),
      'every callback got its own chord results in order',
    );
    for (const id of chordIds) await settledGroup((groupId) => c.groupResult(groupId), id);
    t.equal(calls.size, 50, 'no callback is missing');
    t.same(calls.repeated(), [], 'no callback ran twice');
  });

  t.test(`${backend}: a 200-member chord across 4 workers runs its callback once with 200 results in order`, async (t) => {
    const calls = new CallCounter();
    const member = defineTask({ name: 'wide.member', handler: async (args: { n: number }) => args.n });
    const callback = defineTask({
      name: 'wide.callback',
      handler: async (args: { parent?: number[] }, ctx) => {
        calls.hit(ctx.id);
        return args.parent;
      },
    });
    const cluster = await openCluster(t, backend, [member, callback]);
    for (let i = 0; i < 4; i++) await cluster.startWorker({ concurrency: 4 });
    const c = canvasOf(cluster.stem);
    const n = 200;
    const chordId = await c.chord({ body: Array.from({ length: n }, (_, i) => task(member, { n: i })), callback: task(callback, {}) });
    t.same(
      await cluster.stem.handle(chordId).result(RESULT_TIMEOUT),
      Array.from({ length: n }, (_, i) => i),
    );
    await settledGroup((id) => c.groupResult(id), chordId);
    t.equal(calls.of(chordId), 1);
  });

  t.test(`${backend}: the getting-started example runs, and another process reads the chord's state`, async (t) => {
    const cluster = await openCluster(t, backend, [resizeImage, renderReport, emailReceipt]);
    await cluster.startWorker({ queues: ['default', 'reports', 'emails'] });
    const c = canvasOf(cluster.stem);
    const group = await c.group([task(resizeImage, { file: 'hero.png' }), task('media.resize', { file: 'thumb.png' })], {
      groupId: 'image-assets',
    });
    t.equal(group.groupId, 'image-assets');
    const chordId = await c.chord({
      body: [task(renderReport, { week: '2024-W28' }), task(renderReport, { week: '2024-W29' })],
      callback: task(emailReceipt, { to: 'finance@example.com' }, { queue: 'emails' }),
    });
    // A fresh Stem on the same backend stands for a process that did not enqueue anything.
    const elsewhere = await cluster.another();
    const receipt = await elsewhere.handle<{ to: string; parentResult: unknown }>(chordId).result(RESULT_TIMEOUT);
    t.equal(receipt.to, 'finance@example.com');
    t.same(receipt.parentResult, [
      { week: '2024-W28', pages: 12 },
      { week: '2024-W29', pages: 12 },
    ]);
    const status = await elsewhere.status(chordId);
    t.equal(status.state, 'succeeded');
    t.equal(status.name, 'billing.email-receipt');
    t.equal(status.queue, 'emails');
    const body = (await canvasOf(elsewhere).groupResult(chordId))!;
    t.same(body.states, ['succeeded', 'succeeded']);
    const images = await settledGroup((id) => canvasOf(elsewhere).groupResult(id), 'image-assets');
    t.same(images.results, [
      { file: 'hero.png', resized: true },
      { file: 'thumb.png', resized: true },
    ]);
    t.same(images.taskIds, group.taskIds);
  });
}
