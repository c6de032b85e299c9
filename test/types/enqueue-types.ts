// Compiled by test/types.test.ts with tsc: each @ts-expect-error line must fail to type-check,
// and every other line must pass. It is never run.
import { Stem, defineTask } from '../../sdk/index.js';

export const add = defineTask({
  name: 'math.add',
  options: { queue: 'default', maxRetries: 3, priority: 5 },
  handler: async (args: { a: number; b: number }) => args.a + args.b,
});

export const greet = defineTask<{ name: string }, string>({
  name: 'greet',
  handler: (args) => `hello ${args.name}`,
});

export async function usage(stem: Stem): Promise<void> {
  const handle = await stem.enqueue(add, { a: 1, b: 2 }, { priority: 7, notBefore: '5s' });
  const sum: number = await handle.result({ timeoutMs: 60_000 });
  // @ts-expect-error the result of math.add is a number, not a string
  const wrong: string = await handle.result();
  // @ts-expect-error b is missing
  await stem.enqueue(add, { a: 1 });
  // @ts-expect-error a must be a number
  await stem.enqueue(add, { a: '1', b: 2 });
  const greeting: string = await (await stem.enqueue(greet, { name: 'Ada' })).result();
  const untyped: unknown = await (await stem.enqueue('math.add', { a: 1, b: 2 })).result();
  void [sum, wrong, greeting, untyped];
}
