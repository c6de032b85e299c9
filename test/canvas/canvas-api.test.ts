import t, { type Test } from 'tap';
import { ConfigError, Stem, TaskCancelledError, TaskFailedError, UsageError, defineTask, type TaskDefinition } from '../../sdk/index.js';
import { canvas, canvasOf, parentResult, task, type Signature } from '../../plugins/canvas/index.js';
import { waitFor } from '../helpers/wait.js';

const RESULT_TIMEOUT = { timeoutMs: 60_000 };

const echo = defineTask({ name: 'api.echo', handler: async (args: { text: string; parent?: unknown }) => args });

/** A memory Stem with the canvas plugin, closed when the test ends. */
async function memoryStem(t: Test, tasks: TaskDefinition[] = [echo]): Promise<Stem> {
  const stem = await Stem.create({ tasks, plugins: [canvas()] });
  t.teardown(() => stem.close());
  return stem;
}

t.test('task() makes a signature from a definition or a name, and immutable() copies it', async (t) => {
  const typed = task(echo, { text: 'hi' }, { queue: 'q', priority: 7 });
  t.equal(typed.name, 'api.echo');
  t.equal(typed.definition, echo);
  t.same(typed.options, { queue: 'q', priority: 7 });
  t.equal(typed.isImmutable, false);
  const frozen = typed.immutable();
  t.equal(frozen.isImmutable, true);
  t.equal(typed.isImmutable, false, 'the original is unchanged');
  t.equal(task('by.name').isImmutable, false);
  t.same(task('by.name').args, {}, 'args default to {}');
  const viaOption = task('by.name', {}, { immutable: true });
  t.equal(viaOption.isImmutable, true);
  t.notOk('immutable' in viaOption.options, 'immutable is not passed on as an enqueue option');
  // @ts-expect-error the args of a defined task are checked against its handler
  task(echo, { txt: 'typo' });
  t.throws(() => task(''), UsageError);
  t.throws(() => task(42 as unknown as string), /expected a task name or a defineTask\(\) definition/);
});

t.test('canvasOf() refuses a Stem made without the canvas plugin, saying what to add', async (t) => {
  const stem = await Stem.create({ tasks: [echo] });
  t.teardown(() => stem.close());
  t.throws(() => canvasOf(stem), ConfigError);
  t.throws(() => canvasOf(stem), /add canvas\(\) to its plugins/);
});

t.test('compositions are checked before anything is enqueued', async (t) => {
  const stem = await memoryStem(t);
  const c = canvasOf(stem);
  await t.rejects(c.chain([]), /chain\(\): pass at least one step/);
  await t.rejects(c.chain([task(echo, { text: 'a' }), { name: 'api.echo' } as unknown as Signature]), /chain\(\)\[1\] is not a signature/);
  await t.rejects(
    c.chain([task(echo, { text: 'a' }), task('api.echo', { text: 'b', when: new Map() })]),
    /chain\[1\]\.args\.when: a Map instance/,
  );
  await t.rejects(
    c.chain([task(echo, { text: 'a' }), task('api.echo', {}, { retryPolicy: { retryOn: () => true } })]),
    /chain\[1\]\.options\.retryPolicy\.retryOn: a function/,
  );
  await t.rejects(
    c.chord({ body: [task(echo, { text: 'a' })], callback: task(echo, { text: 'cb' }), onError: 'ignore' as 'fail' }),
    /option "onError" is "ignore"/,
  );
  await t.rejects(
    c.chord({
      body: [task(echo, { text: 'a' }, { id: 'same' }), task(echo, { text: 'b' }, { id: 'same' })],
      callback: task(echo, { text: 'cb' }),
    }),
    /task id same is given twice/,
  );
  await t.rejects(
    c.chord({ body: [task(echo, { text: 'a' })], callback: 'api.echo' as unknown as Signature }),
    /option "callback" is not a signature/,
  );
  await t.rejects(c.group('api.echo' as unknown as Signature[]), UsageError);
});

t.test('an empty group is complete at once, and an empty chord fires its callback with no results', async (t) => {
  const stem = await memoryStem(t);
  await stem.worker().start();
  const c = canvasOf(stem);
  const { groupId, taskIds } = await c.group([]);
  t.same(taskIds, []);
  const group = (await c.groupResult(groupId))!;
  t.equal(group.done, true);
  t.equal(group.completed, 0);
  const chordId = await c.chord({ body: [], callback: task(echo, { text: 'nothing to wait for' }) });
  t.same(await stem.handle(chordId).result(RESULT_TIMEOUT), { text: 'nothing to wait for', parent: [] });
});

t.test('array args get the parent result prepended; other non-object args are passed unchanged', async (t) => {
  const seen: unknown[] = [];
  const first = defineTask({ name: 'args.first', handler: async () => 'P' });
  const listy = defineTask({
    name: 'args.list',
    handler: async (args: unknown[], ctx) => {
      seen.push(args, parentResult(ctx));
      return 7;
    },
  });
  const plain = defineTask({
    name: 'args.plain',
    handler: async (args: string, ctx) => {
      seen.push(args, parentResult(ctx));
      return 'done';
    },
  });
  const stem = await memoryStem(t, [first, listy, plain]);
  await stem.worker().start();
  const chainId = await canvasOf(stem).chain([task(first, {}), task(listy, ['x']), task(plain, 'as is')]);
  t.equal(await stem.handle(chainId).result(RESULT_TIMEOUT), 'done');
  t.same(seen, [['P', 'x'], 'P', 'as is', 7]);
});

t.test('a cancelled step stops the chain, which ends cancelled naming the step', async (t) => {
  const stem = await memoryStem(t);
  await stem.worker().start();
  const chainId = await canvasOf(stem).chain([
    task(echo, { text: 'a' }),
    task(echo, { text: 'b' }, { expiresAt: new Date(Date.now() - 60_000) }),
    task(echo, { text: 'c' }),
  ]);
  const error = await stem
    .handle(chainId)
    .result(RESULT_TIMEOUT)
    .catch((e: unknown) => e);
  t.type(error, TaskCancelledError);
  t.match((error as Error).message, /step 2 of 3 \(api\.echo, task [0-9a-f-]+\) was cancelled: TaskCancelledError: expired/);
  t.equal((await stem.status(chainId)).state, 'cancelled');
});

t.test('a next step the finishing worker cannot enqueue fails the chain instead of looping', async (t) => {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning.message);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const stem = await memoryStem(t);
  await stem.worker().start();
  const chainId = await canvasOf(stem).chain([task(echo, { text: 'a' }), task('not.registered')]);
  const error = await stem
    .handle(chainId)
    .result(RESULT_TIMEOUT)
    .catch((e: unknown) => e);
  t.type(error, TaskFailedError);
  t.match((error as Error).message, /step 2 of 2 \(not\.registered\) could not be enqueued: UnknownTaskError/);
  const status = await stem.status(chainId);
  t.equal(status.error?.type, 'CanvasHandoffError');
  await waitFor(() => warnings.some((w) => w.includes('not.registered')), 'the warning');
});

t.test('tasks outside any canvas run as before', async (t) => {
  const stem = await memoryStem(t);
  await stem.worker().start();
  const handle = await stem.enqueue(echo, { text: 'plain' });
  t.same(await handle.result(RESULT_TIMEOUT), { text: 'plain' });
});
