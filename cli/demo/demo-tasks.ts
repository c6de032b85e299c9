import { defineTask } from '../../sdk/task.js';

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Adds two numbers. */
export const demoAdd = defineTask({
  name: 'demo.add',
  handler: async (args: { a: number; b: number }) => args.a + args.b,
});

/** Fails on its first two attempts, then succeeds: shows retries with backoff. */
export const demoFlaky = defineTask({
  name: 'demo.flaky',
  options: { maxRetries: 3, retryPolicy: { delayMs: 100, backoff: 'exponential' } },
  handler: async (args: { failTimes: number }, ctx) => {
    if (ctx.attempt < args.failTimes) throw new Error(`simulated failure on attempt ${ctx.attempt + 1}`);
    return `ok after ${ctx.attempt + 1} attempts`;
  },
});

/** Takes a while: fills the queue so that priorities show. */
export const demoSlow = defineTask({
  name: 'demo.slow',
  handler: async (args: { ms: number }, ctx) => {
    await sleep(args.ms, ctx.signal);
    return `slept ${args.ms}ms`;
  },
});

/** Enqueued last with priority 9: runs before the waiting lower-priority tasks. */
export const demoUrgent = defineTask({
  name: 'demo.urgent',
  handler: async (args: { ticket: string }) => `handled ${args.ticket}`,
});

/** Enqueued with a delay: runs no earlier than its notBefore. */
export const demoDelayed = defineTask({
  name: 'demo.delayed',
  handler: async (args: { note: string }) => args.note,
});

/** Every task of the demo. */
export const demoTasks = [demoAdd, demoFlaky, demoSlow, demoUrgent, demoDelayed];
