/** Tasks of the event-stream tests: one that adds, one that always throws (two quick retries). */
import { defineTask } from 'stem';

export const add = defineTask({ name: 'ev.add', handler: (args: { a: number; b: number }) => args.a + args.b });

export const broken = defineTask({
  name: 'ev.broken',
  options: { retryPolicy: { maxRetries: 2, backoff: 'fixed', delayMs: 10, jitter: false } },
  handler: () => {
    throw new Error('broken on purpose');
  },
});
