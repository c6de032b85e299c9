import t, { type Test } from 'tap';
import { telemetry } from '../../plugins/telemetry/index.js';
import { Stem, defineTask, type TaskDefinition } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { MetricRecorder } from './otel-harness.js';

const RESULT = { timeoutMs: 60_000 };

/** A memory Stem with telemetry() on a fresh metric recorder only (no tracer provider anywhere). */
async function meteredStem(t: Test, tasks: TaskDefinition[]) {
  const recorder = new MetricRecorder();
  const stem = await Stem.create({ tasks, defaultQueue: 'work', plugins: [telemetry({ meterProvider: recorder.provider })] });
  t.teardown(async () => {
    await stem.close();
    await recorder.close();
  });
  return { stem, recorder };
}

const ok = defineTask({ name: 'metrics.ok', handler: async (args: { n: number }) => args.n });
const flaky = defineTask({
  name: 'metrics.flaky',
  options: { maxRetries: 1, retryPolicy: { delayMs: 5, jitter: false } },
  handler: async (_args: {}, ctx) => {
    if (ctx.attempt === 0) throw new TypeError('once');
    return 'second time lucky';
  },
});
const doomed = defineTask({
  name: 'metrics.doomed',
  handler: async () => {
    throw new RangeError('always');
  },
});

t.test('after 5 successes, 1 retried-then-succeeded and 1 dead-lettered task the counters say so', async (t) => {
  const { stem, recorder } = await meteredStem(t, [ok, flaky, doomed]);
  const worker = stem.worker({ queues: ['work'] });
  await worker.start();
  const handles = await stem.enqueueMany([
    ...[1, 2, 3, 4, 5].map((n) => ({ task: ok, args: { n } })),
    { task: flaky, args: {} },
    { task: doomed, args: {} },
  ]);
  await Promise.allSettled(handles.map((handle) => handle.result(RESULT)));
  await waitFor(async () => (await recorder.total('messaging.client.consumed.messages')) === 8, '8 consumed messages');

  t.equal(await recorder.total('messaging.client.sent.messages'), 7, '7 messages sent (a retry is not a send)');
  t.equal(
    await recorder.total('messaging.client.sent.messages', { 'messaging.destination.name': 'work', 'stem.task.name': 'metrics.ok' }),
    5,
  );
  t.equal(await recorder.total('messaging.client.consumed.messages'), 8, '5 + 2 attempts of the flaky one + 1');
  t.equal(
    await recorder.total('messaging.client.consumed.messages', { 'error.type': 'TypeError' }),
    1,
    'the failed attempt carries error.type',
  );
  t.equal(
    await recorder.total('messaging.client.consumed.messages', {
      'messaging.consumer.group.name': 'work',
      'messaging.operation.name': 'process',
      'error.type': undefined,
    }),
    6,
    'the 6 successes carry the consumer group and no error.type',
  );
  t.equal(await recorder.total('messaging.process.duration'), 8, 'one duration per attempt');
  const duration = await recorder.metric('messaging.process.duration');
  t.equal(duration?.descriptor.unit, 's', 'durations are in seconds');
  t.equal(await recorder.total('stem.tasks.retried'), 1);
  t.equal(await recorder.total('stem.tasks.retried', { 'stem.task.name': 'metrics.flaky', 'error.type': 'TypeError' }), 1);
  t.equal(await recorder.total('stem.tasks.dead_lettered'), 1);
  t.equal(await recorder.total('stem.tasks.dead_lettered', { 'stem.task.name': 'metrics.doomed', 'error.type': 'RangeError' }), 1);
});

t.test('stem.queue.depth observes the waiting messages of each queue a worker consumes', async (t) => {
  const { stem, recorder } = await meteredStem(t, [ok]);
  const worker = stem.worker({ queues: ['work', 'idle'] });
  t.equal(await recorder.total('stem.queue.depth'), 0, 'nothing observed before a worker starts');
  await worker.start();
  for (const n of [1, 2, 3]) await stem.enqueue(ok, { n }, { notBefore: '1h' });
  t.equal(await recorder.total('stem.queue.depth', { 'messaging.destination.name': 'work' }), 3, 'three delayed messages wait in work');
  t.equal(await recorder.total('stem.queue.depth', { 'messaging.destination.name': 'idle' }), 0);
  const depth = await recorder.metric('stem.queue.depth');
  t.equal(depth?.dataPoints.length, 2, 'one point per consumed queue');
  await worker.stop();
  await stem.enqueue(ok, { n: 4 }, { notBefore: '1h' });
  t.equal(
    await recorder.total('stem.queue.depth', { 'messaging.destination.name': 'work' }),
    3,
    "a stopped worker's queues are no longer observed",
  );
});

t.test('stem.worker.inflight counts the tasks a worker runs now', async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let started = 0;
  const blocking = defineTask({
    name: 'metrics.blocking',
    handler: async () => {
      started++;
      await released;
      return 'done';
    },
  });
  const { stem, recorder } = await meteredStem(t, [blocking]);
  const worker = stem.worker({ queues: ['work'], concurrency: 4, id: 'inflight-worker' });
  await worker.start();
  const handles = await Promise.all([1, 2].map(() => stem.enqueue(blocking, {})));
  await waitFor(() => started === 2, 'both tasks to start');
  t.equal(await recorder.total('stem.worker.inflight', { 'stem.worker.id': 'inflight-worker' }), 2);
  release();
  await Promise.all(handles.map((handle) => handle.result(RESULT)));
  await waitFor(() => worker.runningCount() === 0, 'the worker to be idle');
  t.equal(await recorder.total('stem.worker.inflight'), 0);
});
