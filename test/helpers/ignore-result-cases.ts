import type { Test } from 'tap';
import { defineTask, ResultIgnoredError, Stem, type StemPlugin } from '../../sdk/index.js';
import { uniqueName } from '../contract/support.js';

/** Tasks the cases enqueue: each counts its runs by id. */
function tasks(ran: Map<string, number>) {
  const count = (id: string): void => void ran.set(id, (ran.get(id) ?? 0) + 1);
  return {
    fireAndForget: defineTask({
      name: 'ignore.fire-and-forget',
      options: { ignoreResult: true },
      handler: async (args: { n: number }, ctx) => {
        count(ctx.id);
        await ctx.progress(args.n);
        return args.n;
      },
    }),
    kept: defineTask({
      name: 'ignore.kept',
      handler: async (args: { n: number }, ctx) => {
        count(ctx.id);
        return args.n * 10;
      },
    }),
  };
}

/**
 * The `ignoreResult` specification, run against one composition (`plugins`, or the memory default
 * when empty): no state is written for such a task, at enqueue or by the worker, and `result()`
 * fails at once; `ignoreResult: false` at enqueue brings the states back.
 */
export async function ignoreResultCases(t: Test, plugins: () => StemPlugin[]): Promise<void> {
  const ran = new Map<string, number>();
  const { fireAndForget, kept } = tasks(ran);
  const queue = uniqueName('ignore');
  const stem = await Stem.create({ plugins: plugins(), tasks: [fireAndForget, kept], defaultQueue: queue });
  t.teardown(() => stem.close());
  const worker = stem.worker({ queues: [queue], concurrency: 1 });
  await worker.start();
  /** A kept task behind the others on a one-slot worker: once its result is in, their states would have been flushed. */
  const drain = async (): Promise<void> => {
    const last = await stem.enqueue(kept, { n: 0 });
    await last.result({ timeoutMs: 60_000 });
  };

  await t.test('a task declared with ignoreResult runs, and no state of it is ever written', async (t) => {
    const handle = await stem.enqueue(fireAndForget, { n: 1 });
    t.equal(await stem.backend.get(handle.id), null, 'no queued state at enqueue');
    await drain();
    t.equal(ran.get(handle.id), 1, 'it ran once');
    t.equal(await stem.backend.get(handle.id), null, 'no running, progress or succeeded state');
    t.equal((await stem.status(handle.id)).state, 'pending', 'status reads pending');
  });

  await t.test('result() of an ignored task fails at once with ResultIgnoredError', async (t) => {
    const handle = await stem.enqueue(fireAndForget, { n: 2 });
    const error = await handle.result({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    t.type(error, ResultIgnoredError);
    t.equal((error as ResultIgnoredError).code, 'result-ignored');
    t.match((error as Error).message, new RegExp(`task ${handle.id} was enqueued with ignoreResult`));
    await drain();
  });

  await t.test('ignoreResult per enqueue: true silences a kept task, false brings the states of an ignoring one back', async (t) => {
    const silenced = await stem.enqueue(kept, { n: 3 }, { ignoreResult: true });
    const wanted = await stem.enqueue(fireAndForget, { n: 4 }, { ignoreResult: false });
    t.equal(await wanted.result({ timeoutMs: 60_000 }), 4, 'the result of the task that asked for it');
    await drain();
    t.equal(ran.get(silenced.id), 1, 'the silenced task ran');
    t.equal(await stem.backend.get(silenced.id), null, 'and left no state');
    await t.rejects(silenced.result(), ResultIgnoredError);
  });

  await t.test('enqueueMany writes states only for the tasks that keep results', async (t) => {
    const [a, b] = await stem.enqueueMany([
      { task: fireAndForget, args: { n: 5 } },
      { task: kept, args: { n: 6 } },
    ]);
    t.equal(await b!.result({ timeoutMs: 60_000 }), 60);
    await drain();
    t.equal(ran.get(a!.id), 1);
    t.equal(await stem.backend.get(a!.id), null);
  });
}
