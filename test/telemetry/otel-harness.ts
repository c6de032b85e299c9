import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
// A dependency of sdk-trace-base, always installed with it.
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/**
 * Registers what an application's SDK setup registers globally: the AsyncLocalStorage context
 * manager (so `context.with` reaches async continuations) and the W3C trace-context propagator.
 */
export function registerGlobalContext(): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** A tracer provider whose finished spans are kept in memory. */
export class SpanRecorder {
  readonly exporter = new InMemorySpanExporter();
  readonly provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.exporter)] });

  /** Every finished span. */
  spans(): ReadableSpan[] {
    return this.exporter.getFinishedSpans();
  }

  /** Finished spans named `name`, in the order they ended. */
  named(name: string): ReadableSpan[] {
    return this.spans().filter((span) => span.name === name);
  }

  /** Shuts the provider down. */
  close(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** A metric reader that collects on demand (cumulative), as a test asks. */
class OnDemandMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }

  protected override async onShutdown(): Promise<void> {}

  protected override async onForceFlush(): Promise<void> {}
}

/** A meter provider read on demand. */
export class MetricRecorder {
  private readonly reader = new OnDemandMetricReader();
  readonly provider = new MeterProvider({ readers: [this.reader] });

  /** The data of metric `name` now, or undefined when nothing was recorded under it. */
  async metric(name: string): Promise<MetricData | undefined> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw errors[0];
    for (const scope of resourceMetrics.scopeMetrics) {
      const found = scope.metrics.find((metric) => metric.descriptor.name === name);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** The sum of a counter's (or gauge's) points, optionally only those whose attributes match. */
  async total(name: string, where: Record<string, unknown> = {}): Promise<number> {
    const data = await this.metric(name);
    if (data === undefined) return 0;
    let total = 0;
    for (const point of data.dataPoints as DataPoint<number | Histogram>[]) {
      if (!Object.entries(where).every(([key, value]) => point.attributes[key] === value)) continue;
      total += data.dataPointType === DataPointType.HISTOGRAM ? (point.value as Histogram).count : (point.value as number);
    }
    return total;
  }

  /** Shuts the provider down. */
  close(): Promise<void> {
    return this.provider.shutdown();
  }
}
