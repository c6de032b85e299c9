// Issue #21's cases over the real brokers: a hard time limit stops a `while (true) {}` handler and
// the next task runs; maxTasksPerChild 5 over 20 tasks shows 4 children; a child SIGKILLed mid-task
// retries and nothing is lost; a 10 s CPU-bound task with a 2 s visibility timeout is never
// redelivered to another worker. Each case has its own queue and namespace (Postgres: one schema
// for the file), and removes them.
import t, { type Test } from 'tap';
import { type IsolationOptions, type IsolationPlugin, isolation } from '../../plugins/isolation/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { Stem, type StemPlugin, type TaskDefinition, TaskFailedError } from '../../sdk/index.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import * as isolated from './isolated-tasks.js';

const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);

/** How a case reaches one real broker and backend: a plugin per Stem on the case's own namespace. */
interface Broker {
  name: string;
  /** A namespace of its own for one case, and how to remove it. */
  open(): { plugin: () => StemPlugin; cleanup: () => Promise<unknown> };
  /** The pool the 10 s CPU-bound case runs in (the other one runs there in isolation-redis-cli / isolation-postgres). */
  spinPool: 'threads' | 'processes';
}

/** One case's worker: a Stem with the isolation plugin consuming the case's own queue. */
async function setUp(t: Test, broker: Broker, options: IsolationOptions, concurrency = 1) {
  const { plugin: transport, cleanup } = broker.open();
  const queue = uniqueName('iso');
  const plugin: IsolationPlugin = isolation(options);
  const stem = await Stem.create({ plugins: [transport(), plugin], tasks });
  t.teardown(async () => {
    await stem.close();
    await cleanup();
  });
  await stem.worker({ queues: [queue], concurrency }).start();
  return { stem, plugin, queue, transport };
}

const modeOf = (pool: 'threads' | 'processes') => (pool === 'threads' ? 'thread' : 'process');

async function suite(broker: Broker): Promise<void> {
  for (const pool of ['threads', 'processes'] as const) {
    const mode = modeOf(pool);

    await t.test(
      `${broker.name}, ${pool}: a while (true) {} handler with timeLimit 1s is stopped; it retries, fails typed, and the next task runs`,
      async (t) => {
        // Two children, both past their first import: each attempt's limit measures the loop, not a child starting or loading
        // the task module (the limit counts from the start of the attempt), and the retry finds the other child idle.
        const { stem, plugin, queue } = await setUp(t, broker, { pool, min: 2, max: 2 }, 2);
        await waitFor(() => plugin.stats()[mode]!.alive === 2, 'two children', 120_000);
        const warmUp = await stem.enqueueMany([0, 1].map(() => ({ task: isolated.spin, args: { ms: 1_000 }, options: { queue } })));
        const warm = new Set(
          (await Promise.all(warmUp.map((handle) => handle.result({ timeoutMs: 120_000 })))).map((run) => (run as { child: string }).child),
        );
        t.equal(warm.size, 2, 'both children loaded the task module');
        let retried = 0;
        stem.signals.on('task-retried', ({ envelope }) => {
          if (envelope.name === 'iso.forever') retried++;
        });
        const stuck = await stem.enqueue(isolated.forever, {}, { queue, timeLimit: '1s', maxRetries: 1, retryPolicy: { delayMs: 10 } });
        await t.rejects(stuck.result({ timeoutMs: 120_000 }), TaskFailedError);
        const status = await stem.status(stuck.id);
        t.equal(status.error?.type, 'TimeLimitExceededError');
        t.match(status.error?.message, /hard time limit of 1000ms/);
        t.equal(retried, 1, 'the first attempt was retried per its policy');
        t.equal(plugin.stats()[mode]?.terminated, 2, 'both attempts had their child terminated');
        // The dead letter is written after the failed state (Postgres: in the worker's completion batch).
        await waitFor(async () => (await stem.broker.getDeadLetter(queue, stuck.id)) !== null, 'the dead letter', 120_000);
        t.equal((await stem.broker.getDeadLetter(queue, stuck.id))?.reason, 'max-retries-exhausted');
        const next = await (await stem.enqueue(isolated.whoami, {}, { queue })).result({ timeoutMs: 120_000 });
        t.match(next, new RegExp(`^${mode}:`), 'the next task ran');
        t.notOk(warm.has(next), 'on a new child');
      },
    );

    await t.test(`${broker.name}, ${pool}: maxTasksPerChild 5 over 20 tasks: 4 children ran them`, async (t) => {
      const { stem, plugin, queue } = await setUp(t, broker, { pool, max: 1, maxTasksPerChild: 5 });
      const handles = await stem.enqueueMany(Array.from({ length: 20 }, () => ({ task: isolated.whoami, args: {}, options: { queue } })));
      const seen = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 120_000 })));
      t.equal(new Set(seen).size, 4, `children: ${[...new Set(seen)].join(', ')}`);
      for (const child of new Set(seen)) t.equal(seen.filter((id) => id === child).length, 5, `${child} ran 5 tasks`);
      t.equal(plugin.stats()[mode]?.recycledMaxTasks, 4);
    });
  }

  await t.test(
    `${broker.name}, processes: a child killed with SIGKILL mid-task fails that attempt; the retry runs and nothing is lost`,
    async (t) => {
      const { stem, plugin, queue } = await setUp(t, broker, { pool: 'processes' });
      let started = false;
      stem.signals.on('task-started', ({ envelope }) => {
        if (envelope.name === 'iso.victim' && envelope.attempt === 0) started = true;
      });
      const victim = await stem.enqueue(isolated.victim, {}, { queue, maxRetries: 1, retryPolicy: { delayMs: 10 } });
      await waitFor(() => started && plugin.stats().process!.running.length === 1, 'the first attempt to run in a child', 120_000);
      const [child] = plugin.stats().process!.running;
      process.kill(Number(child!.slice('process:'.length)), 'SIGKILL');
      t.equal(await victim.result({ timeoutMs: 120_000 }), 'survived on attempt 1');
      t.equal((await stem.status(victim.id)).attempt, 1, 'the retry ran it');
      const next = await (await stem.enqueue(isolated.whoami, {}, { queue })).result({ timeoutMs: 120_000 });
      t.match(next, /^process:/, 'the next task ran');
      t.not(next, child, 'on another child');
      t.equal(plugin.stats().process?.crashed, 1);
    },
  );

  await t.test(
    `${broker.name}, ${broker.spinPool}: a 10 s CPU-bound task with a 2 s visibility timeout is never redelivered`,
    async (t) => {
      const { stem, queue, transport } = await setUp(t, broker, { pool: broker.spinPool }, 2);
      const spin = await stem.enqueue(isolated.spin, { ms: 10_000 }, { queue, visibilityTimeout: '2s' });
      await waitFor(async () => (await stem.status(spin.id)).state === 'running', 'the task to start', 120_000);
      // A second worker on the same queue and namespace: it would claim the message once its lease ran out.
      const other = await Stem.create({ plugins: [transport()], tasks });
      t.teardown(() => other.close());
      let receivedThere = 0;
      other.signals.on('task-received', ({ envelope }) => {
        if (envelope.id === spin.id) receivedThere++;
      });
      await other.worker({ queues: [queue], concurrency: 1 }).start();
      const result = await spin.result({ timeoutMs: 120_000 });
      t.match(result.child, new RegExp(`^${modeOf(broker.spinPool)}:`));
      t.equal(receivedThere, 0, 'the other worker never received it');
      t.equal((await stem.status(spin.id)).attempt, 0, 'it ran once');
    },
  );
}

if (await requireRedis(t)) {
  await suite({
    name: 'Redis',
    spinPool: 'processes',
    open() {
      const namespace = testNamespace('iso');
      return { plugin: () => redis({ url: REDIS_URL, namespace }), cleanup: () => deleteNamespace(namespace) };
    },
  });
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('isobrokers');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  await suite({
    name: 'Postgres',
    spinPool: 'threads',
    open() {
      const namespace = uniqueName('ns');
      return { plugin: () => postgres({ url: testUrl, schema, namespace, migrate: false, poolSize: 4 }), cleanup: async () => undefined };
    },
  });
}
