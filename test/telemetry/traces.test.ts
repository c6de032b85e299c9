import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import t, { type Test } from 'tap';
import { canvas, canvasOf, task } from '../../plugins/canvas/index.js';
import { telemetry, type TelemetryOptions } from '../../plugins/telemetry/index.js';
import { ConfigError, Stem, defineTask, type StemPlugin, type TaskDefinition } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { registerGlobalContext, SpanRecorder } from './otel-harness.js';

registerGlobalContext();

const RESULT = { timeoutMs: 60_000 };

/** A memory Stem with telemetry() on a fresh span recorder, and a started worker on `queue`. */
async function tracedStem(
  t: Test,
  tasks: TaskDefinition[],
  options: TelemetryOptions & { queue?: string; extraPlugins?: StemPlugin[] } = {},
) {
  const recorder = new SpanRecorder();
  const { queue = 'jobs', extraPlugins = [], ...telemetryOptions } = options;
  const stem = await Stem.create({
    tasks,
    defaultQueue: queue,
    plugins: [...extraPlugins, telemetry({ tracerProvider: recorder.provider, ...telemetryOptions })],
  });
  const worker = stem.worker({ queues: [queue] });
  await worker.start();
  t.teardown(async () => {
    await stem.close();
    await recorder.close();
  });
  return { stem, recorder };
}

function spanId(span: ReadableSpan): string {
  return span.spanContext().spanId;
}

function traceId(span: ReadableSpan): string {
  return span.spanContext().traceId;
}

const echo = defineTask({
  name: 'telemetry.echo',
  handler: async (args: { text: string }, ctx) => ({ text: args.text, traceparent: ctx.headers.traceparent }),
});

t.test('an enqueue makes a send span whose context travels in traceparent; the process span is its child and links to it', async (t) => {
  const { stem, recorder } = await tracedStem(t, [echo]);
  const handle = await stem.enqueue(echo, { text: 'hi' });
  const result = await handle.result(RESULT);
  await waitFor(() => recorder.named('process jobs').length === 1, 'the process span');

  const [send] = recorder.named('send jobs');
  const [processed] = recorder.named('process jobs');
  t.ok(send && processed, 'one send and one process span');
  t.equal(send!.kind, SpanKind.PRODUCER);
  t.same(send!.attributes, {
    'messaging.system': 'stem',
    'messaging.destination.name': 'jobs',
    'messaging.message.id': handle.id,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'stem.task.name': 'telemetry.echo',
    'stem.task.attempt': 0,
  });
  t.equal(result.traceparent, `00-${traceId(send!)}-${spanId(send!)}-01`, 'the handler sees the send span in its traceparent header');

  t.equal(processed!.kind, SpanKind.CONSUMER);
  t.match(processed!.attributes, {
    'messaging.system': 'stem',
    'messaging.destination.name': 'jobs',
    'messaging.message.id': handle.id,
    'messaging.operation.type': 'process',
    'messaging.consumer.group.name': 'jobs',
    'stem.task.name': 'telemetry.echo',
    'stem.task.attempt': 0,
  });
  t.notOk('error.type' in processed!.attributes, 'no error.type on success');
  t.equal(processed!.status.code, SpanStatusCode.UNSET);
  t.equal(traceId(processed!), traceId(send!), 'one trace');
  t.equal(processed!.parentSpanContext?.spanId, spanId(send!), 'parented on the creation context');
  t.equal(processed!.links.length, 1);
  t.equal(processed!.links[0]!.context.spanId, spanId(send!), 'linked to the creation context');
});

t.test("a send span is a child of the caller's active span", async (t) => {
  const { stem, recorder } = await tracedStem(t, [echo]);
  const tracer = recorder.provider.getTracer('test');
  let requestSpanId = '';
  await tracer.startActiveSpan('http request', async (span) => {
    requestSpanId = span.spanContext().spanId;
    await (await stem.enqueue(echo, { text: 'x' })).result(RESULT);
    span.end();
  });
  const [send] = recorder.named('send jobs');
  t.equal(send!.parentSpanContext?.spanId, requestSpanId);
});

t.test('a failed attempt records the exception; its retry is a new process span in the same trace', async (t) => {
  const flaky = defineTask({
    name: 'telemetry.flaky',
    options: { maxRetries: 2, retryPolicy: { delayMs: 5, jitter: false } },
    handler: async (_args: {}, ctx) => {
      if (ctx.attempt === 0) throw new TypeError('first attempt breaks');
      return 'ok';
    },
  });
  const { stem, recorder } = await tracedStem(t, [flaky]);
  await (await stem.enqueue(flaky, {})).result(RESULT);
  await waitFor(() => recorder.named('process jobs').length === 2, 'two process spans');

  const [send] = recorder.named('send jobs');
  const [failed, retried] = recorder.named('process jobs');
  t.equal(failed!.attributes['stem.task.attempt'], 0);
  t.equal(retried!.attributes['stem.task.attempt'], 1);
  t.not(spanId(failed!), spanId(retried!), 'each attempt has its own span');
  t.equal(traceId(retried!), traceId(failed!), 'the retry is in the same trace');
  t.equal(retried!.parentSpanContext?.spanId, spanId(send!), 'both attempts are children of the send span');

  t.equal(failed!.status.code, SpanStatusCode.ERROR);
  t.equal(failed!.status.message, 'TypeError: first attempt breaks');
  t.equal(failed!.attributes['error.type'], 'TypeError');
  const exception = failed!.events.find((event) => event.name === 'exception');
  t.match(
    exception?.attributes,
    { 'exception.type': 'TypeError', 'exception.message': 'first attempt breaks' },
    'the exception is recorded',
  );
  t.match(String(exception?.attributes?.['exception.stacktrace']), /first attempt breaks/, 'with its stack');
  const retry = failed!.events.find((event) => event.name === 'stem.retry');
  t.same(retry?.attributes, { 'stem.retry.delay_ms': 5, 'stem.retry.next_attempt': 1 }, 'the retry is an event on the failed attempt');

  t.equal(retried!.status.code, SpanStatusCode.UNSET);
  t.equal(retried!.events.length, 0);
});

t.test('a task that exhausts its retries gets a dead-letter event', async (t) => {
  const doomed = defineTask({
    name: 'telemetry.doomed',
    handler: async () => {
      throw new RangeError('never works');
    },
  });
  const { stem, recorder } = await tracedStem(t, [doomed]);
  const handle = await stem.enqueue(doomed, {});
  await t.rejects(handle.result(RESULT));
  await waitFor(() => recorder.named('process jobs').length === 1, 'the process span');
  const [span] = recorder.named('process jobs');
  t.equal(span!.status.code, SpanStatusCode.ERROR);
  t.equal(span!.attributes['error.type'], 'RangeError');
  t.same(
    span!.events.map((event) => event.name),
    ['exception', 'stem.dead_letter'],
  );
  t.same(span!.events[1]!.attributes, { 'stem.dead_letter.reason': 'max-retries-exhausted' });
});

t.test('a task the worker does not know is dead-lettered with a span that says so', async (t) => {
  const { stem, recorder } = await tracedStem(t, []);
  const handle = await stem.enqueue('telemetry.nobody-knows', {});
  await t.rejects(handle.result(RESULT));
  await waitFor(() => recorder.named('process jobs').length === 1, 'the process span');
  const [span] = recorder.named('process jobs');
  t.equal(span!.attributes['error.type'], 'UnknownTaskError');
  t.same(span!.events.at(-1)?.attributes, { 'stem.dead_letter.reason': 'unregistered-task' });
  t.equal(traceId(span!), traceId(recorder.named('send jobs')[0]!));
});

t.test('a task enqueued inside a handler joins its trace as a child of the process span', async (t) => {
  const child = defineTask({ name: 'telemetry.child', handler: async () => 'child done' });
  const parent = defineTask({
    name: 'telemetry.parent',
    handler: async (_args: {}, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const fromContext = await ctx.enqueue(child, {});
      return fromContext.id;
    },
  });
  const { stem, recorder } = await tracedStem(t, [parent, child]);
  const childId = await (await stem.enqueue(parent, {})).result(RESULT);
  await stem.handle(childId).result(RESULT);
  await waitFor(() => recorder.named('process jobs').length === 2, 'both process spans');

  const parentProcess = recorder.named('process jobs').find((span) => span.attributes['stem.task.name'] === 'telemetry.parent')!;
  const childSend = recorder.named('send jobs').find((span) => span.attributes['stem.task.name'] === 'telemetry.child')!;
  const childProcess = recorder.named('process jobs').find((span) => span.attributes['stem.task.name'] === 'telemetry.child')!;
  t.equal(childSend.parentSpanContext?.spanId, spanId(parentProcess), "the child's send span is a child of the parent's process span");
  t.equal(traceId(childProcess), traceId(parentProcess), 'one trace');
});

t.test('the steps of a canvas chain share one trace', async (t) => {
  const step = defineTask({ name: 'telemetry.step', handler: async (args: { n: number }) => args.n + 1 });
  const { stem, recorder } = await tracedStem(t, [step], { extraPlugins: [canvas()] });
  const chainId = await canvasOf(stem).chain([task(step, { n: 1 }), task(step, { n: 2 }).immutable(), task(step, { n: 3 }).immutable()]);
  await stem.handle(chainId).result(RESULT);
  await waitFor(() => recorder.named('process jobs').length === 3, 'three process spans');
  const traces = new Set(recorder.spans().map(traceId));
  t.equal(traces.size, 1, 'every send and process span of the chain is in one trace');
  const processes = recorder.named('process jobs');
  const sends = recorder.named('send jobs');
  t.equal(sends.length, 3);
  t.equal(sends[1]!.parentSpanContext?.spanId, spanId(processes[0]!), 'step 2 was sent from inside step 1');
});

t.test('parentOnCreation: false starts a new trace per attempt, linked to the creation context', async (t) => {
  const { stem, recorder } = await tracedStem(t, [echo], { parentOnCreation: false });
  await (await stem.enqueue(echo, { text: 'x' })).result(RESULT);
  await waitFor(() => recorder.named('process jobs').length === 1, 'the process span');
  const [send] = recorder.named('send jobs');
  const [processed] = recorder.named('process jobs');
  t.not(traceId(processed!), traceId(send!));
  t.equal(processed!.parentSpanContext, undefined, 'a root span');
  t.equal(processed!.links[0]?.context.spanId, spanId(send!));
});

t.test("a broadcast is processed in the worker's own consumer group", async (t) => {
  const recorder = new SpanRecorder();
  const stem = await Stem.create({ tasks: [echo], plugins: [telemetry({ tracerProvider: recorder.provider })] });
  const worker = stem.worker({ queues: ['jobs'], broadcasts: ['news'], id: 'worker-a' });
  await worker.start();
  t.teardown(async () => {
    await stem.close();
    await recorder.close();
  });
  await stem.enqueue('broadcast://news', { text: 'all' });
  await waitFor(() => recorder.named('process broadcast://news').length === 1, 'the process span');
  t.match(recorder.named('process broadcast://news')[0]!.attributes, {
    'messaging.destination.name': 'broadcast://news',
    'messaging.consumer.group.name': 'worker-a',
  });
});

t.test('with no SDK registered, telemetry() taps no hook and tasks run as before', async (t) => {
  t.equal(
    trace.getTracerProvider().getTracer('probe').startSpan('probe').isRecording(),
    false,
    'no global tracer provider in this process',
  );
  const stem = await Stem.create({ tasks: [echo], plugins: [telemetry()] });
  t.teardown(() => stem.close());
  for (const name of ['enqueue', 'published', 'execute', 'result', 'workerStart', 'workerStop'] as const)
    t.equal(stem.hooks[name].isUsed(), false, `${name} is not tapped`);
  const worker = stem.worker({});
  await worker.start();
  t.same(await (await stem.enqueue(echo, { text: 'plain' })).result(RESULT), { text: 'plain' });
});

t.test('telemetry() checks its options when created, naming the one that is wrong', async (t) => {
  t.throws(() => telemetry({ tracerProvider: {} as never }), ConfigError);
  t.throws(() => telemetry({ tracerProvider: {} as never }), /tracerProvider must be an OpenTelemetry TracerProvider/);
  t.throws(() => telemetry({ meterProvider: { getTracer() {} } as never }), /meterProvider must be an OpenTelemetry MeterProvider/);
  t.throws(() => telemetry({ parentOnCreation: 'yes' as never }), /parentOnCreation must be true or false, got "yes"/);
});

t.test("a chord callback's process span links to the traces of its members", async (t) => {
  const member = defineTask({ name: 'telemetry.member', handler: async (args: { n: number }) => args.n });
  const total = defineTask({
    name: 'telemetry.total',
    handler: async (args: { parent?: number[] }) => (args.parent ?? []).reduce((a, b) => a + b, 0),
  });
  const { stem, recorder } = await tracedStem(t, [member, total], { extraPlugins: [canvas()] });
  const chordId = await canvasOf(stem).chord({
    body: [task(member, { n: 1 }), task(member, { n: 2 }), task(member, { n: 3 })],
    callback: task(total, {}),
  });
  t.equal(await stem.handle<number>(chordId).result(RESULT), 6);
  await waitFor(() => recorder.named('process jobs').length === 4, 'four process spans');
  const processes = recorder.named('process jobs');
  const callback = processes.find((span) => span.attributes['messaging.message.id'] === chordId)!;
  const memberSends = recorder.named('send jobs').filter((span) => span.attributes['messaging.message.id'] !== chordId);
  t.equal(memberSends.length, 3);
  const linked = new Set(callback.links.map((link) => link.context.spanId));
  for (const send of memberSends) t.ok(linked.has(spanId(send)), `the callback links to member ${send.attributes['messaging.message.id']}`);
});

t.test('a send span whose publish failed ends with the error', async (t) => {
  const { MemoryBroker } = await import('../../sdk/index.js');
  const broker = new MemoryBroker();
  broker.publish = async () => {
    throw new Error('broker down');
  };
  const failing: StemPlugin = { name: 'failing-broker', apply: (s) => s.provide('broker', broker), close: () => broker.close() };
  const { stem, recorder } = await tracedStem(t, [echo], { extraPlugins: [failing] });
  await t.rejects(stem.enqueue(echo, { text: 'lost?' }), /broker down/);
  const [send] = recorder.named('send jobs');
  t.ok(send, 'the send span ended');
  t.equal(send!.status.code, SpanStatusCode.ERROR);
  t.equal(send!.attributes['error.type'], 'Error');
  t.match(
    send!.events.map((event) => event.name),
    ['exception'],
  );
});

t.test('the send span of a duplicate that uniqueness answered for ends too', async (t) => {
  const { unique } = await import('../../plugins/unique/index.js');
  const once = defineTask({ name: 'telemetry.once', options: { unique: true, uniqueFor: '1m' }, handler: async () => 'done' });
  const { stem, recorder } = await tracedStem(t, [once], { extraPlugins: [unique()] });
  const first = await stem.enqueue(once, {});
  const second = await stem.enqueue(once, {});
  t.not(second.envelope?.id, undefined);
  await first.result(RESULT);
  await waitFor(() => recorder.named('send jobs').length === 2, 'two ended send spans');
  t.equal(recorder.named('send jobs').filter((span) => span.status.code === SpanStatusCode.ERROR).length, 0, 'neither is an error');
});
