import t from 'tap';
import { Stem } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { runStem, startStem } from '../helpers/run-stem.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import * as isolated from './isolated-tasks.js';

t.test(
  'Redis, stem worker start --pool threads: a 5 s CPU-bound task with a 2 s lease keeps it renewed; a second worker never gets it',
  async (t) => {
    if (!(await requireRedis(t))) return;
    const queue = uniqueName('iso');
    const connection = ['--broker', REDIS_URL, '--backend', REDIS_URL, '--registry', 'test/isolation/isolated-tasks.ts'];
    const cli = await startStem(['worker', 'start', '--queues', queue, '--pool', 'threads', '--max-tasks-per-child', '10', ...connection], {
      env: { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' },
    });
    t.teardown(() => cli.stop('SIGKILL'));
    await cli.waitForOutput(/ready on .*consuming/);

    const stem = await Stem.create({
      plugins: [redis({ url: REDIS_URL })],
      tasks: Object.values(isolated).filter((v) => typeof v === 'object') as never,
    });
    t.teardown(async () => {
      await stem.broker.purge(queue);
      await stem.close();
    });
    const spin = await stem.enqueue(isolated.spin, { ms: 5_000 }, { queue, visibilityTimeout: '2s' });
    // 'running' lasts the loop: a poll stalled longer would see 'succeeded', which also means it started.
    await waitFor(
      async () => ['running', 'succeeded'].includes((await stem.status(spin.id)).state),
      'the CLI worker to start the task',
      60_000,
    );

    // A second worker on the same queue: it would claim the message if the first stopped renewing its lease.
    let receivedHere = 0;
    stem.signals.on('task-received', ({ envelope }) => {
      if (envelope.id === spin.id) receivedHere++;
    });
    await stem.worker({ queues: [queue], concurrency: 1 }).start();

    const result = await spin.result({ timeoutMs: 60_000 });
    t.match(result.child, /^thread:/, 'the CLI worker ran it in a thread');
    t.equal(receivedHere, 0, 'the second worker never received it');
    const status = await stem.status(spin.id);
    t.equal(status.attempt, 0);
    t.not(status.workerId, undefined);
    await cli.waitForOutput(new RegExp(`iso\\.spin\\[${spin.id}\\] succeeded`));
  },
);

t.test('stem worker start: a wrong --pool, or a child limit without --pool, is a usage error naming the fix', async (t) => {
  const env = { STEM_BROKER_URL: 'memory://', STEM_RESULT_BACKEND_URL: '' };
  const wrong = await runStem(['worker', 'start', '--pool', 'forks', '--registry', 'test/isolation/isolated-tasks.ts'], { env });
  t.equal(wrong.code, 64, wrong.stderr);
  t.match(wrong.stderr, /--pool: "forks" must be threads or processes/);
  const alone = await runStem(['worker', 'start', '--max-tasks-per-child', '5', '--registry', 'test/isolation/isolated-tasks.ts'], { env });
  t.equal(alone.code, 64, alone.stderr);
  t.match(alone.stderr, /need --pool threads or --pool processes/);
});
