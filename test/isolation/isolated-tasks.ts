/**
 * Tasks the isolation tests run in worker threads and child processes: each child imports this
 * module by path (`handlerModule: import.meta.url`) and calls the handler of the task it is asked for.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { context, trace } from '@opentelemetry/api';
import { defineTask, Retry } from 'stem';

const here = { handlerModule: import.meta.url };

/** Which child ran it: `thread:<threadId>` or `process:<pid>` (the ids the pool's stats list). */
function whoAmI(): string {
  return isMainThread ? `process:${process.pid}` : `thread:${threadId}`;
}

/** A domain error with a name and a code of its own, to see both come back. */
export class PaymentDeclined extends Error {
  readonly code = 'card-declined';
  constructor(message: string) {
    super(message);
    this.name = 'PaymentDeclined';
  }
}

export const whoami = defineTask({ name: 'iso.whoami', options: here, handler: () => whoAmI() });

export const spin = defineTask({
  name: 'iso.spin',
  options: here,
  handler: (args: { ms: number }) => {
    // Synchronous on purpose: nothing else runs on this thread until it returns.
    const end = Date.now() + args.ms;
    let turns = 0;
    while (Date.now() < end) turns++;
    return { turns, child: whoAmI() };
  },
});

export const forever = defineTask({
  name: 'iso.forever',
  options: here,
  handler: () => {
    for (;;) {
      // a CPU-bound loop that never looks at ctx.signal
    }
  },
});

export const exits = defineTask({
  name: 'iso.exit',
  options: here,
  handler: () => {
    process.exit(3);
  },
});

export const throwsLater = defineTask({
  name: 'iso.throwLater',
  options: here,
  handler: () => {
    setTimeout(() => {
      throw new TypeError('thrown from a timer');
    }, 0);
    return new Promise(() => undefined);
  },
});

export const declines = defineTask({
  name: 'iso.declines',
  options: here,
  handler: (args: { amount: number }) => {
    throw new PaymentDeclined(`card declined for ${args.amount}`);
  },
});

export const flaky = defineTask({
  name: 'iso.flaky',
  options: { ...here, maxRetries: 2, retryPolicy: { delayMs: 10 } },
  handler: (_args: object, ctx) => {
    if (ctx.attempt === 0) throw new Retry({ countdownMs: 10, reason: 'first attempt asks again' });
    return `attempt ${ctx.attempt}`;
  },
});

export const add = defineTask({
  name: 'iso.add',
  options: { ...here, isolate: 'none' },
  handler: (args: { a: number; b: number }) => args.a + args.b,
});

export const parent = defineTask({
  name: 'iso.parent',
  options: here,
  handler: async (args: { a: number; b: number }, ctx) => {
    await ctx.progress({ step: 'enqueueing' });
    await ctx.heartbeat();
    const child = await ctx.enqueue(add, args);
    const sum = await child.result({ timeoutMs: 60_000 });
    return { childId: child.id, sum, seen: { id: ctx.id, name: ctx.name, attempt: ctx.attempt, tenant: ctx.headers.tenant } };
  },
});

export const gentle = defineTask({
  name: 'iso.gentle',
  options: { ...here, softTimeLimit: '100ms' },
  handler: async (_args: object, ctx) => {
    if (!ctx.softSignal.aborted) await new Promise((resolve) => ctx.softSignal.addEventListener('abort', resolve, { once: true }));
    return `wrapped up after ${(ctx.softSignal.reason as Error).name}`;
  },
});

/** Keeps what it allocates, so that the child's memory grows task after task. */
const kept: number[][] = [];
export const hoard = defineTask({
  name: 'iso.hoard',
  options: here,
  handler: (args: { mb: number }) => {
    for (let i = 0; i < args.mb; i++) kept.push(new Array(131_072).fill(i));
    return whoAmI();
  },
});

export const victim = defineTask({
  name: 'iso.victim',
  options: here,
  handler: (_args: object, ctx) => {
    // The first attempt computes until it is killed; the retry finishes at once.
    if (ctx.attempt === 0) {
      for (;;) {
        // CPU-bound until SIGKILL
      }
    }
    return `survived on attempt ${ctx.attempt}`;
  },
});

export const traced = defineTask({
  name: 'iso.traced',
  options: here,
  handler: async (args: { a: number; b: number }, ctx) => {
    // The span context active in the child: the worker's process span, carried across.
    const active = trace.getSpanContext(context.active());
    const child = await ctx.enqueue(add, args);
    return { traceId: active?.traceId, spanId: active?.spanId, childId: child.id };
  },
});

export const cooperative = defineTask({
  name: 'iso.cooperative',
  options: here,
  handler: async (_args: object, ctx) => {
    // Gives up as soon as ctx.signal (wired from the worker) aborts.
    if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    return `gave up: ${(ctx.signal.reason as Error).name}`;
  },
});

export const segfaults = defineTask({
  name: 'iso.segfault',
  options: here,
  handler: () => {
    // What a native addon's bad pointer does to its process (only ever run in a child process).
    process.kill(process.pid, 'SIGSEGV');
    return new Promise(() => undefined);
  },
});

export const exhaustsHeap = defineTask({
  name: 'iso.exhaustHeap',
  options: here,
  handler: () => {
    // Allocates until the child's V8 heap limit stops it (only ever run in a child with a small limit).
    const kept: number[][] = [];
    for (;;) kept.push(new Array(131_072).fill(kept.length));
  },
});

export const chatty = defineTask({
  name: 'iso.chatty',
  options: here,
  handler: (args: { word: string }) => {
    console.log(`out ${args.word}`);
    console.error(`err ${args.word}\nsecond line ${args.word}`);
    process.stdout.write(`partial ${args.word} `);
    process.stdout.write('line\n');
    return whoAmI();
  },
});
