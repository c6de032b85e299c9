import t from 'tap';
import { defineTask, type TaskContext } from 'stem';
import { ControlClient } from '../../plugins/control/index.js';
import { REVOKE_COMMAND, revokeTask } from '../../plugins/revoke/index.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { opsCluster } from './ops-harness.js';

// Revoke on a real Redis: the revoke store is Redis, workers are separate Stem instances (as separate processes would be).

function recordingTasks(started: string[]) {
  const hold = defineTask({
    name: 'ops.revoke.hold',
    handler: (_args: Record<string, never>, ctx: TaskContext) =>
      new Promise<string>((resolve, reject) => {
        started.push(ctx.id);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        setTimeout(() => resolve('finished'), 20_000).unref();
      }),
  });
  const quick = defineTask({
    name: 'ops.revoke.quick',
    handler: async (_args: Record<string, never>, ctx: TaskContext) => {
      started.push(ctx.id);
      return 'ran';
    },
  });
  return { hold, quick };
}

t.test('revoke with terminate aborts a running task and its state is cancelled', async (t) => {
  const cluster = await opsCluster(t, 'revoke-terminate');
  if (!cluster) return;
  const started: string[] = [];
  const { hold } = recordingTasks(started);
  const workerSide = await cluster.stem([hold]);
  const revokedSignals: Array<{ taskId: string; terminate: boolean }> = [];
  workerSide.signals.on('task-revoked', ({ taskId, terminate }) => revokedSignals.push({ taskId, terminate }));
  const worker = workerSide.worker({ queues: ['q'] });
  await worker.start();

  const producer = await cluster.stem([hold]);
  const handle = await producer.enqueue(hold, {}, { queue: 'q' });
  await waitFor(() => started.includes(handle.id), 'the task started');
  const entries = await revokeTask(producer, handle.id, { terminate: true, reason: 'test' });
  const replies = await new ControlClient(producer).request(REVOKE_COMMAND, { entries }, { destination: [worker.id], timeout: '30s' });
  t.same(replies[0]?.reply, { taskIds: [handle.id], terminated: [handle.id] }, 'the worker says it aborted the task');
  const status = await producer.handle(handle.id).status();
  await waitFor(async () => (await handle.status()).state === 'cancelled', 'the state becomes cancelled', 60_000);
  t.not(status.state, 'succeeded');
  t.match(await handle.status(), { state: 'cancelled', error: { message: /revoked: test/ } });
  t.same(revokedSignals, [{ taskId: handle.id, terminate: true }], 'task-revoked was signalled');
  t.equal(worker.runningCount(), 0);
});

t.test('a revoke reaches a running worker through the store alone (no control request)', async (t) => {
  const cluster = await opsCluster(t, 'revoke-sync');
  if (!cluster) return;
  const started: string[] = [];
  const { hold } = recordingTasks(started);
  const workerSide = await cluster.stem([hold]);
  await workerSide.worker({ queues: ['q'] }).start();
  const producer = await cluster.stem([hold]);
  const handle = await producer.enqueue(hold, {}, { queue: 'q' });
  await waitFor(() => started.includes(handle.id), 'the task started');
  await revokeTask(producer, handle.id, { terminate: true });
  await waitFor(async () => (await handle.status()).state === 'cancelled', 'the periodic sync aborts it', 60_000);
  t.pass('cancelled by the sync from the revoke store');
});

t.test('a revoked queued task never starts, and is cancelled at once', async (t) => {
  const cluster = await opsCluster(t, 'revoke-queued');
  if (!cluster) return;
  const started: string[] = [];
  const { quick } = recordingTasks(started);
  const producer = await cluster.stem([quick]);
  const revoked = await producer.enqueue(quick, {}, { queue: 'q' });
  const kept = await producer.enqueue(quick, {}, { queue: 'q' });
  await revokeTask(producer, revoked.id);
  t.match(await revoked.status(), { state: 'cancelled' }, 'marked cancelled before any worker saw it');

  const workerSide = await cluster.stem([quick]);
  await workerSide.worker({ queues: ['q'] }).start();
  t.equal(await kept.result({ timeoutMs: 60_000 }), 'ran');
  await waitFor(
    async () => (await workerSide.broker.pending('q')) === 0 && (await workerSide.broker.inflight('q')) === 0,
    'the queue drained',
  );
  t.notOk(started.includes(revoked.id), 'the revoked task never started');
  t.equal((await revoked.status()).state, 'cancelled');
});

t.test('a revoke issued before the worker starts still holds, also for a redelivery', async (t) => {
  const cluster = await opsCluster(t, 'revoke-before');
  if (!cluster) return;
  const started: string[] = [];
  const { quick } = recordingTasks(started);
  const producer = await cluster.stem([quick]);
  const later = await producer.enqueue(quick, {}, { queue: 'q', notBefore: '300ms' });
  await revokeTask(producer, later.id);
  // the same id published again (a replay, a producer retry): still never run
  await producer.enqueue(quick, {}, { queue: 'q', id: later.id });
  const marker = await producer.enqueue(quick, {}, { queue: 'q', notBefore: '600ms' });

  const workerSide = await cluster.stem([quick]);
  const cancelled: string[] = [];
  workerSide.signals.on('task-cancelled', ({ envelope, reason }) => cancelled.push(`${envelope.id}:${reason}`));
  await workerSide.worker({ queues: ['q'] }).start();
  t.equal(await marker.result({ timeoutMs: 60_000 }), 'ran');
  await waitFor(() => cancelled.length === 2, 'both deliveries of the revoked id were cancelled');
  await sleep(50);
  t.same(cancelled, [`${later.id}:revoked`, `${later.id}:revoked`]);
  t.same(started, [marker.id], 'only the marker ran');
});
