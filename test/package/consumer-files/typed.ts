// Type-checked by the consumer test with the consumer's own tsc settings; never run. The lines
// marked as expected errors must be errors (tsc reports an unused marker), every other line must pass.
import { Stem, defineTask, type StemConfig } from 'stem';
import { loadConfig, type ResolvedConfig } from 'stem/config';
import { redis } from 'stem/plugins/redis';

export const add = defineTask({
  name: 'math.add',
  handler: async (args: { a: number; b: number }) => args.a + args.b,
});

export async function usage(): Promise<number> {
  const config: StemConfig = { tasks: [add], plugins: [redis({ url: 'redis://127.0.0.1:6379', namespace: 'consumer' })] };
  const resolved: ResolvedConfig = await loadConfig();
  const stem = await Stem.create(resolved.configPath === undefined ? config : resolved);
  const handle = await stem.enqueue(add, { a: 1, b: 2 });
  const sum: number = await handle.result({ timeoutMs: 5_000 });
  // @ts-expect-error a must be a number
  await stem.enqueue(add, { a: '1', b: 2 });
  // @ts-expect-error b is missing
  await stem.enqueue(add, { a: 1 });
  // @ts-expect-error the result is a number
  const wrong: string = await handle.result();
  void wrong;
  await stem.close();
  return sum;
}
