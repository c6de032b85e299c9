import t from 'tap';
import { isolation } from '../../plugins/isolation/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { Stem, type TaskDefinition } from '../../sdk/index.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import * as isolated from './isolated-tasks.js';

const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);

if (await requirePostgres(t)) {
  const schema = uniqueSchema('isolation');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  t.test(
    'Postgres, processes: a 4 s CPU-bound task with a 2 s lease stays with its worker; a SIGKILLed child retries, nothing lost',
    async (t) => {
      const namespace = uniqueName('ns');
      const queue = uniqueName('queue');
      const plugin = isolation({ pool: 'processes' });
      const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace }), plugin], tasks });
      t.teardown(() => stem.close());
      await stem.worker({ queues: [queue], concurrency: 2 }).start();

      const spin = await stem.enqueue(isolated.spin, { ms: 4_000 }, { queue, visibilityTimeout: '2s' });
      // 'running' lasts the loop: a poll stalled longer would see 'succeeded', which also means it started.
      await waitFor(async () => ['running', 'succeeded'].includes((await stem.status(spin.id)).state), 'the task to start', 60_000);
      // A second worker on the same queue, which would claim the message once its lease ran out.
      const other = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace })], tasks });
      let receivedThere = 0;
      other.signals.on('task-received', ({ envelope }) => {
        if (envelope.id === spin.id) receivedThere++;
      });
      const otherWorker = other.worker({ queues: [queue], concurrency: 1 });
      await otherWorker.start();
      t.match((await spin.result({ timeoutMs: 60_000 })).child, /^process:/);
      t.equal(receivedThere, 0, 'the other worker never received it');
      t.equal((await stem.status(spin.id)).attempt, 0);
      await other.close();

      let started = false;
      stem.signals.on('task-started', ({ envelope }) => {
        if (envelope.name === 'iso.victim' && envelope.attempt === 0) started = true;
      });
      const victim = await stem.enqueue(isolated.victim, {}, { queue, maxRetries: 1, retryPolicy: { delayMs: 10 } });
      await waitFor(() => started && plugin.stats().process!.busy === 1, 'the first attempt to run', 120_000);
      const [running] = plugin.stats().process!.running;
      process.kill(Number(running!.slice('process:'.length)), 'SIGKILL');
      t.equal(await victim.result({ timeoutMs: 60_000 }), 'survived on attempt 1');
      t.equal(plugin.stats().process?.crashed, 1);
    },
  );
}
