// A TypeScript task registry (`--registry tasks.ts`).
import { defineTask } from 'stem';

interface Pair {
  a: number;
  b: number;
}

export const multiply = defineTask({ name: 'consumer.multiply', handler: async ({ a, b }: Pair): Promise<number> => a * b });
export default [multiply];
