import t from 'tap';
import { defineTask } from 'stem';
import { ControlClient } from '../../plugins/control/index.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { opsCluster } from './ops-harness.js';

const nap = defineTask({
  name: 'ops.nap',
  handler: async (args: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve('rested'), args.ms)),
});

t.test('autoscale 2:16 grows past 2 slots under a backlog and returns to 2 when idle (Redis)', async (t) => {
  const cluster = await opsCluster(t, 'autoscale');
  if (!cluster) return;
  const stem = await cluster.stem([nap]);
  const scaled: Array<{ from: number; to: number }> = [];
  stem.signals.on('worker-scaled', ({ from, to }) => scaled.push({ from, to }));
  const worker = stem.worker({
    queues: ['backlog'],
    autoscale: { min: 2, max: 16, interval: '50ms', upCooldown: '50ms', idleAfter: '300ms' },
  });
  t.equal(worker.concurrency, 2, 'starts at the minimum');
  await worker.start();
  const handles = await stem.enqueueMany(
    Array.from({ length: 80 }, () => ({ task: nap, args: { ms: 50 }, options: { queue: 'backlog' } })),
  );
  // Seen from the signals: a poll of worker.concurrency could miss the spell above 2 (a stalled test process, the
  // backlog drained and the worker already back down).
  await waitFor(() => scaled.some(({ to }) => to > 2), 'more than 2 slots', 60_000);
  t.ok(
    scaled.some(({ to }) => to > 2),
    `grew to ${Math.max(...scaled.map(({ to }) => to))}`,
  );
  const [stats] = await new ControlClient(stem).request('stats', {}, { destination: [worker.id], timeout: '30s' });
  t.match(stats?.reply, { autoscaler: { min: 2, max: 16 } }, 'stats show the autoscaler');
  await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 30_000 })));
  await waitFor(() => worker.concurrency === 2, 'back to 2 when idle', 60_000);
  t.equal(worker.concurrency, 2);
  t.ok(scaled.some(({ to }) => to > 2) && scaled[scaled.length - 1]!.to === 2, 'each decision was signalled');
});

t.test('a queue paused for everyone stays paused for a worker that starts later, until resumed (Redis)', async (t) => {
  const cluster = await opsCluster(t, 'pause');
  if (!cluster) return;
  const admin = await cluster.stem([nap]);
  const client = new ControlClient(admin);
  t.same(await client.pauseQueue('slow', { timeout: '100ms' }), [], 'no worker is alive yet; the pause is stored');
  const handle = await admin.enqueue(nap, { ms: 1 }, { queue: 'slow' });

  const workerSide = await cluster.stem([nap]);
  const worker = workerSide.worker({ queues: ['slow', 'fast'] });
  await worker.start();
  t.same(worker.pausedQueues(), ['slow'], 'the new worker read the stored pause');
  const other = await admin.enqueue(nap, { ms: 1 }, { queue: 'fast' });
  t.equal(await other.result({ timeoutMs: 60_000 }), 'rested', 'its other queue is consumed');
  t.equal((await handle.status()).state, 'queued', 'the paused queue is not');

  // A broadcast collects for its whole timeout; a resume is idempotent, so it is sent again until the worker answered.
  let replies: Awaited<ReturnType<typeof client.resumeQueue>> = [];
  await waitFor(async () => (replies = await client.resumeQueue('slow', { timeout: '1s' })).length > 0, 'the worker to answer the resume');
  t.same(
    replies.map((reply) => reply.reply),
    [{ queue: 'slow', consuming: true, paused: false }],
  );
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'rested', 'resumed: it runs');
  const restarted = (await cluster.stem([nap])).worker({ queues: ['slow'] });
  await restarted.start();
  t.same(restarted.pausedQueues(), [], 'a worker that starts after the resume consumes the queue');
});

t.test('a stopped worker no longer answers and its heartbeat expires (Redis)', async (t) => {
  const cluster = await opsCluster(t, 'heartbeat');
  if (!cluster) return;
  const stem = await cluster.stem([nap]);
  const worker = stem.worker({ heartbeatInterval: '100ms' });
  await worker.start();
  await waitFor(async () => (await stem.backend.listWorkers()).some((beat) => beat.workerId === worker.id), 'the heartbeat');
  await worker.stop();
  const client = new ControlClient(stem);
  t.same(await client.request('ping', {}, { timeout: '200ms' }), [], 'no reply from a stopped worker');
  await sleep(500);
  t.notOk(
    (await stem.backend.listWorkers()).some((beat) => beat.workerId === worker.id),
    'its heartbeat expired (TTL three intervals)',
  );
});
