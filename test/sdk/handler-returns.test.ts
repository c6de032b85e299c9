import t from 'tap';
import { Stem, TaskFailedError, defineTask, type TaskDefinition } from '../../sdk/index.js';

// The worker calls a handler without an async wrapper when no execute hook is tapped (#28): a
// value, a promise, a thenable, a synchronous throw and a thenable whose `then` throws must each
// end the task as they did when every handler was wrapped in an async function.

async function withStem(tasks: TaskDefinition[], body: (stem: Stem) => Promise<void>): Promise<void> {
  const stem = await Stem.create({ tasks });
  try {
    const worker = stem.worker({ concurrency: 4 });
    await worker.start();
    await body(stem);
  } finally {
    await stem.close();
  }
}

t.test('a handler may return a value, a promise or a thenable, or throw, synchronously or not', async (t) => {
  const value = defineTask({ name: 'returns.value', handler: (args: { n: number }) => args.n * 2 });
  const promise = defineTask({ name: 'returns.promise', handler: async (args: { n: number }) => args.n * 3 });
  const thenable = defineTask({
    name: 'returns.thenable',
    // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose, as a handler may return one
    handler: (args: { n: number }) => ({ then: (resolve: (v: number) => void) => resolve(args.n * 4) }) as unknown as Promise<number>,
  });
  const syncThrow = defineTask({
    name: 'throws.sync',
    handler: (): number => {
      throw new Error('thrown at once');
    },
  });
  const asyncThrow = defineTask({
    name: 'throws.async',
    handler: async (): Promise<number> => {
      throw new Error('thrown later');
    },
  });
  const badThenable = defineTask({
    name: 'throws.then',
    handler: () =>
      ({
        // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose, whose then throws
        then: () => {
          throw new Error('then threw');
        },
      }) as unknown as Promise<number>,
  });
  await withStem([value, promise, thenable, syncThrow, asyncThrow, badThenable], async (stem) => {
    t.equal(await (await stem.enqueue(value, { n: 1 })).result({ timeoutMs: 60_000 }), 2);
    t.equal(await (await stem.enqueue(promise, { n: 1 })).result({ timeoutMs: 60_000 }), 3);
    t.equal(await (await stem.enqueue(thenable, { n: 1 })).result({ timeoutMs: 60_000 }), 4);
    for (const [task, message] of [
      [syncThrow, /thrown at once/],
      [asyncThrow, /thrown later/],
      [badThenable, /then threw/],
    ] as const) {
      const handle = await stem.enqueue(task, {});
      const error = await handle.result({ timeoutMs: 60_000 }).catch((e: unknown) => e);
      t.type(error, TaskFailedError, `${task.name} fails its task`);
      t.match((error as Error).message, message);
      t.equal((await stem.status(handle.id)).state, 'failed');
    }
  });
});

t.test('an execute hook still receives a runner that returns a promise, also for a synchronous handler', async (t) => {
  const value = defineTask({ name: 'hooked.value', handler: (args: { n: number }) => args.n + 1 });
  const stem = await Stem.create({
    tasks: [value],
    plugins: [
      {
        name: 'runner-check',
        apply(kernel) {
          kernel.hooks.execute.tap('runner-check', (runner) => (ctx) => {
            const running = runner(ctx);
            t.type(running, Promise, 'the runner handed to the hook returns a promise');
            return running.then((result) => (result as number) * 10);
          });
        },
      },
    ],
  });
  try {
    await stem.worker().start();
    t.equal(await (await stem.enqueue(value, { n: 1 })).result({ timeoutMs: 60_000 }), 20);
  } finally {
    await stem.close();
  }
});
