// Shared by the chord crash tests: a worker process kills itself (SIGKILL) right after winning a
// chord's claim, and another worker takes the claim over once the dead one's lease has ended.
import { once } from 'node:events';
import type { Test } from 'tap';
import { canvas, canvasOf, task } from '../../plugins/canvas/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { Stem, type StemPlugin } from '../../sdk/index.js';
import { startNode, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { dropSchema, testUrl as POSTGRES_URL, uniqueSchema } from '../postgres/postgres-harness.js';
import { REDIS_URL, deleteNamespace, testNamespace } from '../redis/redis-test-support.js';

const script = 'test/canvas/fixtures/chord-crash-worker.ts';

/** The stores the crash runs on: both cross processes, which memory cannot. */
export type CrashBackend = 'redis' | 'postgres';

/** A producer on a fresh namespace (Redis) or schema (Postgres), and the environment its worker processes need. */
async function openProducer(t: Test, backend: CrashBackend): Promise<{ stem: Stem; env: NodeJS.ProcessEnv }> {
  const namespace = backend === 'redis' ? testNamespace('chord-crash') : uniqueSchema('chord_crash');
  const url = backend === 'redis' ? REDIS_URL : POSTGRES_URL;
  // The producer migrates the schema before any worker starts, so the workers never race to.
  const transport: StemPlugin =
    backend === 'redis' ? redis({ url, namespace, blockMs: 100 }) : postgres({ url, schema: namespace, pollIntervalMs: 100 });
  const stem = await Stem.create({ plugins: [transport, canvas()] });
  t.teardown(async () => {
    await stem.close();
    if (backend === 'redis') await deleteNamespace(namespace);
    else await dropSchema(namespace);
  });
  return { stem, env: { CHORD_BACKEND: backend, CHORD_URL: url, CHORD_NAMESPACE: namespace } };
}

/** Resolves once `worker` has exited, with the signal that ended it (null for an exit code). */
async function exitSignal(worker: RunningStem): Promise<NodeJS.Signals | null> {
  const { child } = worker;
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return child.signalCode;
}

/** Every message of every queue acked: redeliveries of what the dead worker held have run too. */
async function drained(stem: Stem): Promise<boolean> {
  const queues = await stem.broker.listQueues();
  const counts = await Promise.all(queues.map(async (queue) => (await stem.broker.pending(queue)) + (await stem.broker.inflight(queue))));
  return counts.every((count) => count === 0);
}

/** How many times the callback ran, over every worker's output. */
function callbackRuns(workers: readonly RunningStem[]): number {
  return workers.reduce((runs, worker) => runs + (worker.output().match(/callback ran/g)?.length ?? 0), 0);
}

/** The crash tests on `backend`. */
export function chordCrashTests(t: Test, backend: CrashBackend): void {
  const crashed = async (t: Test, crashAt: 'enqueue' | 'published') => {
    const { stem, env } = await openProducer(t, backend);
    const workers: RunningStem[] = [];
    t.teardown(() => Promise.all(workers.map((worker) => worker.stop('SIGKILL'))));
    const doomed = startNode(['--import', 'tsx', script], { env: { ...env, CHORD_CRASH_AT: crashAt } });
    // Started now but held until the crash, so its start-up does not add to the test's time.
    const rescuer = startNode(['--import', 'tsx', script], { env: { ...env, CHORD_HOLD: '1' } });
    workers.push(doomed, rescuer);
    // Generous: on a loaded machine a tsx start-up alone has taken over 20 s.
    await Promise.all([doomed.waitForOutput(/worker ready/, 90_000), rescuer.waitForOutput(/holding/, 90_000)]);
    // A member's visibility timeout is also the lease of the claim its worker makes.
    const chordId = await canvasOf(stem).chord({
      body: [0, 1, 2].map((n) => task('crash.member', { n }, { visibilityTimeout: '2s' })),
      callback: task('crash.callback', {}, { visibilityTimeout: '2s' }),
    });
    t.equal(await exitSignal(doomed), 'SIGKILL', 'the first worker killed itself at the crash point');
    t.match(doomed.output(), `firing callback ${chordId}`, 'after winning the claim');
    return { stem, workers, doomed, rescuer, chordId };
  };

  t.test(
    `${backend}: a worker killed after winning a chord's claim, before enqueueing the callback: another worker takes the claim over and the callback runs once`,
    async (t) => {
      const { stem, workers, doomed, rescuer, chordId } = await crashed(t, 'enqueue');
      t.match(doomed.output(), `crashing before publishing ${chordId}`);
      t.notMatch(doomed.output(), /callback ran/, 'the callback did not run there');
      t.equal((await stem.status(chordId)).state, 'pending', 'the chord waits: the dead worker holds its claim');

      rescuer.child.kill('SIGUSR2');
      t.same(await stem.handle(chordId).result({ timeoutMs: 30_000 }), [0, 10, 20], 'the callback ran with every result in order');
      await waitFor(() => drained(stem), 'every message, redeliveries included, to be acked', 60_000);
      t.equal(await rescuer.stop('SIGTERM'), 0, 'the second worker stopped cleanly');
      t.equal(callbackRuns(workers), 1, 'the callback ran exactly once');
      t.match(rescuer.output(), `callback ran ${chordId} with [0,10,20]`);
      t.match(
        rescuer.output(),
        /took over the claim of .*whose lease ended before it fired the callback/,
        'the second worker says it took the claim over',
      );
      const body = (await canvasOf(stem).groupResult(chordId))!;
      t.same(body.states, ['succeeded', 'succeeded', 'succeeded'], 'the body is intact');
    },
  );

  t.test(
    `${backend}: a worker killed after publishing a chord's callback, before marking the claim fired: the callback runs, and may run again`,
    async (t) => {
      const { stem, workers, doomed, rescuer, chordId } = await crashed(t, 'published');
      t.match(doomed.output(), `crashing after publishing ${chordId}`);

      rescuer.child.kill('SIGUSR2');
      t.same(await stem.handle(chordId).result({ timeoutMs: 30_000 }), [0, 10, 20], 'the callback ran with every result in order');
      await waitFor(() => drained(stem), 'every message, redeliveries included, to be acked', 60_000);
      t.equal(await rescuer.stop('SIGTERM'), 0, 'the second worker stopped cleanly');
      // The dead worker's member is redelivered and re-fires under the same id: at-least-once, never lost.
      const runs = callbackRuns(workers);
      // At most twice more than once: the takeover re-fires it, and the dead worker may already have
      // leased the published callback itself, which is redelivered when that lease runs out.
      t.ok(runs >= 1 && runs <= 3, `the callback ran 1 to 3 times (${runs}): the crash can repeat it, not lose it`);
      t.equal((await stem.status(chordId)).state, 'succeeded');
    },
  );
}
