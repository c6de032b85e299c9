// A worker process for the task-fault tests: one worker per queue of FAULT_QUEUES. Healthy
// `fault.ok` tasks print `start <queue> <n>` and `done <queue> <n>`; each other `fault.*` task
// misbehaves in one way. With FAULT_STORE=memory it also enqueues, in each queue, the bad task the
// queue is named after beside ten healthy ones, waits for all to end, and prints
// `summary <queue> <json>` per queue.
import { Stem, defineTask, type StemPlugin } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { postgres } from '../../plugins/postgres/index.js';

const env = process.env;
const print = (line: string): void => void process.stdout.write(`${line}\n`);
/** Never settles on its own: a handler that waits for what its failing callback should have done. */
const stuck = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

const tasks = [
  defineTask({
    name: 'fault.ok',
    handler: async (args: { n: number }, ctx) => {
      print(`start ${ctx.queue} ${args.n}`);
      await new Promise((resolve) => setTimeout(resolve, 30));
      print(`done ${ctx.queue} ${args.n}`);
      return { n: args.n };
    },
  }),
  defineTask({ name: 'fault.bigint', handler: async () => ({ total: 10n }) }),
  defineTask({
    name: 'fault.cycle',
    handler: async () => {
      const node: Record<string, unknown> = { name: 'loop' };
      node.self = node;
      return node;
    },
  }),
  defineTask({
    name: 'fault.tojson',
    handler: async () => ({
      toJSON: () => {
        throw new Error('toJSON refuses');
      },
    }),
  }),
  // Encodes once (the worker's check), then throws: only the backend's write finds it out.
  defineTask({
    name: 'fault.flaky-tojson',
    handler: async () => {
      let calls = 0;
      return {
        toJSON: () =>
          ++calls > 1
            ? (() => {
                throw new Error('toJSON refuses the second time');
              })()
            : 'fine once',
      };
    },
  }),
  defineTask({
    name: 'fault.timer',
    handler: async (_args: unknown, ctx) => {
      setTimeout(() => {
        throw new Error('thrown in a timer');
      }, 5);
      await stuck(ctx.signal);
    },
  }),
  defineTask({
    name: 'fault.rejection',
    handler: async (_args: unknown, ctx) => {
      void (async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw new Error('a promise nobody awaited');
      })();
      await stuck(ctx.signal);
    },
  }),
  // A microtask carries no async context: nobody can be blamed, so the process must die.
  defineTask({
    name: 'fault.microtask',
    handler: async (_args: unknown, ctx) => {
      queueMicrotask(() => {
        throw new Error('thrown in a microtask');
      });
      await stuck(ctx.signal);
    },
  }),
];

const plugin = (): StemPlugin[] => {
  switch (env.FAULT_STORE) {
    case 'redis':
      return [redis({ url: env.FAULT_URL!, namespace: env.FAULT_NAMESPACE!, blockMs: 200 })];
    case 'postgres':
      return [postgres({ url: env.FAULT_URL!, schema: env.FAULT_NAMESPACE!, pollIntervalMs: 100 })];
    default:
      return [];
  }
};

const stem = await Stem.create({ plugins: plugin(), tasks, maxRedeliveries: Number(env.FAULT_MAX_REDELIVERIES ?? 5) });
const queues = env.FAULT_QUEUES!.split(',');
const workers = queues.map((queue) => stem.worker({ queues: [queue], concurrency: 11 }));
process.on('SIGTERM', () => {
  void Promise.all(workers.map((worker) => worker.stop({ graceMs: 0 })))
    .then(() => stem.close())
    .then(() => process.exit(0));
});

if (env.FAULT_STORE === 'memory') {
  // The queue is named after its bad task.
  const cases = await Promise.all(
    queues.map(async (queue) => {
      const bad = await stem.enqueue(queue, {}, { queue });
      const healthy = await stem.enqueueMany(Array.from({ length: 10 }, (_, n) => ({ task: 'fault.ok', args: { n }, options: { queue } })));
      return { queue, ids: [bad.id, ...healthy.map((handle) => handle.id)] };
    }),
  );
  await Promise.all(workers.map((worker) => worker.start()));
  print('ready');
  for (const { queue, ids } of cases) {
    for (;;) {
      const states = await Promise.all(ids.map((id) => stem.status(id)));
      if (states.every((status) => ['succeeded', 'failed', 'cancelled'].includes(status.state))) {
        const letters = await stem.broker.listDeadLetters(queue);
        print(
          `summary ${queue} ${JSON.stringify({ bad: states[0], healthy: states.slice(1).map((status) => status.state), letters: letters.entries.map((letter) => ({ id: letter.id, reason: letter.reason })) })}`,
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await Promise.all(workers.map((worker) => worker.stop()));
  await stem.close();
} else {
  await Promise.all(workers.map((worker) => worker.start()));
  print('ready');
}
