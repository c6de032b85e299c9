// The task of the chaos harness: it sleeps a little and then records its run in the side table.
// Isolation children import this module by path (handlerModule) when CHAOS_ISOLATE is set.
import { defineTask } from '../../sdk/index.js';
import { record } from './chaos-recorder.js';

/** Sleeps `ms`, records the run, returns `n`. */
export const work = defineTask({
  name: 'chaos.work',
  // A failed side-table write (a fault hit it) is retried quickly; the queue's own retries are what is under test.
  options: { maxRetries: 50, retryPolicy: { backoff: 'fixed', delayMs: 50, jitter: false }, handlerModule: import.meta.url },
  handler: async (args: { n: number; ms: number }, ctx) => {
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    await record(ctx.id, startedAt);
    return args.n;
  },
});
