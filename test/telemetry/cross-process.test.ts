import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SpanKind } from '@opentelemetry/api';
import { Redis } from 'ioredis';
import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { telemetry } from '../../plugins/telemetry/index.js';
import { Stem } from '../../sdk/index.js';
import { repoRoot } from '../helpers/run-stem.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { registerGlobalContext, SpanRecorder } from './otel-harness.js';
import type { PrintedSpan } from './span-printing-worker.js';

registerGlobalContext();

const workerScript = fileURLToPath(new URL('./span-printing-worker.ts', import.meta.url));

/** Deletes every key of a namespace (`ns:…` and `{ns:…}…`). */
async function deleteNamespace(namespace: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    for (const pattern of [`${namespace}:*`, `{${namespace}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await client.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}

if (await requireRedis(t)) {
  t.test('one trace spans the producer process and a worker process on Redis', async (t) => {
    const namespace = uniqueName('telemetry');
    const queue = uniqueName('traced');
    t.teardown(() => deleteNamespace(namespace));

    const child = spawn(process.execPath, ['--import', 'tsx', workerScript], {
      cwd: repoRoot,
      env: { ...process.env, TELEMETRY_NAMESPACE: namespace, TELEMETRY_QUEUE: queue, STEM_TEST_REDIS_URL: REDIS_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    t.teardown(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    const lines = (): Array<{ ready?: string; span?: PrintedSpan }> =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line));
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the worker process exited (${child.exitCode}):\n${stdout}${stderr}`);
        return lines().some((line) => line.ready !== undefined);
      },
      'the worker process to be ready',
      120_000,
    );

    const recorder = new SpanRecorder();
    const producer = await Stem.create({
      plugins: [redis({ url: REDIS_URL, namespace }), telemetry({ tracerProvider: recorder.provider })],
    });
    t.teardown(async () => {
      await producer.close();
      await recorder.close();
    });
    const tracer = recorder.provider.getTracer('checkout-service');
    const result = await tracer.startActiveSpan('checkout', async (span) => {
      const handle = await producer.enqueue('telemetry.cross-process', { text: 'traced' }, { queue });
      span.end();
      return handle.result({ timeoutMs: 60_000 });
    });
    t.equal(result, 'TRACED', 'the worker process ran the task');

    const processName = `process ${queue}`;
    await waitFor(() => lines().some((line) => line.span?.name === processName), `the worker's ${processName} span`, 60_000);
    const processed = lines().find((line) => line.span?.name === processName)!.span!;
    const [checkout] = recorder.named('checkout');
    const [send] = recorder.named(`send ${queue}`);
    t.ok(checkout && send, 'the producer recorded its own span and the send span');
    t.equal(send!.parentSpanContext?.spanId, checkout!.spanContext().spanId, 'the send span is a child of the producer span');

    t.equal(processed.kind, SpanKind.CONSUMER);
    t.equal(processed.traceId, checkout!.spanContext().traceId, "the worker's process span is in the producer's trace");
    t.equal(processed.parentSpanId, send!.spanContext().spanId, 'parented on the send span');
    t.same(processed.links, [{ traceId: send!.spanContext().traceId, spanId: send!.spanContext().spanId }], 'and linked to it');
    t.match(processed.attributes, {
      'messaging.system': 'stem',
      'messaging.destination.name': queue,
      'messaging.consumer.group.name': queue,
      'messaging.operation.type': 'process',
      'stem.task.name': 'telemetry.cross-process',
      'stem.task.attempt': 0,
    });

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'the worker process stopped cleanly');
  });
}
