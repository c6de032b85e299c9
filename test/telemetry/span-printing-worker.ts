/**
 * A worker process for the cross-process trace test: registers a BasicTracerProvider globally
 * (with an in-memory exporter that also prints every finished span as one JSON line on stdout),
 * runs a Redis worker with telemetry() on TELEMETRY_QUEUE, and stops cleanly on SIGTERM.
 *
 * Run as: node --import tsx test/telemetry/span-printing-worker.ts
 * Environment: STEM_TEST_REDIS_URL, TELEMETRY_NAMESPACE, TELEMETRY_QUEUE.
 */
import { trace } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { redis } from '../../plugins/redis/index.js';
import { telemetry } from '../../plugins/telemetry/index.js';
import { Stem, defineTask } from '../../sdk/index.js';
import { REDIS_URL } from '../redis/redis-test-support.js';
import { registerGlobalContext } from './otel-harness.js';

/** One finished span as the test reads it. */
export interface PrintedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  links: Array<{ traceId: string; spanId: string }>;
  attributes: Record<string, unknown>;
}

class PrintingSpanExporter extends InMemorySpanExporter {
  override export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    for (const span of spans) {
      const printed: PrintedSpan = {
        name: span.name,
        kind: span.kind,
        traceId: span.spanContext().traceId,
        spanId: span.spanContext().spanId,
        parentSpanId: span.parentSpanContext?.spanId,
        links: span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId })),
        attributes: { ...span.attributes },
      };
      process.stdout.write(`${JSON.stringify({ span: printed })}\n`);
    }
    super.export(spans, resultCallback);
  }
}

const namespace = process.env.TELEMETRY_NAMESPACE;
const queue = process.env.TELEMETRY_QUEUE;
if (!namespace || !queue) throw new Error('span-printing-worker: set TELEMETRY_NAMESPACE and TELEMETRY_QUEUE');

registerGlobalContext();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new PrintingSpanExporter())] });
trace.setGlobalTracerProvider(provider);

const echo = defineTask({ name: 'telemetry.cross-process', handler: async (args: { text: string }) => args.text.toUpperCase() });
// No tracerProvider option: telemetry() takes the global one registered above, as an application's would.
const stem = await Stem.create({ tasks: [echo], plugins: [redis({ url: REDIS_URL, namespace }), telemetry()] });
const worker = stem.worker({ queues: [queue], concurrency: 2 });
await worker.start();
process.stdout.write(`${JSON.stringify({ ready: worker.id })}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await worker.stop();
    await stem.close();
    await provider.shutdown();
    process.exit(0);
  })();
});
