import { createNoopMeter, metrics, ProxyTracerProvider, trace, type TracerProvider } from '@opentelemetry/api';
import type { StemPlugin } from '../../sdk/plugin.js';
import { TaskMetrics } from './task-metrics.js';
import { TaskTracer } from './task-tracer.js';
import { resolveTelemetryOptions, type TelemetryOptions } from './telemetry-options.js';

/** The instrumentation scope of Stem's tracer and meter. */
export const INSTRUMENTATION_SCOPE = 'stem';

/**
 * The enqueue tap runs after the default stage (0) where routing and other plugins tap, so the
 * span names the final queue and the headers carry the final trace context.
 */
const ENQUEUE_STAGE = 100;

/** What an unset global tracer provider delegates to: the API's no-op provider. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when spans would go nowhere: no provider given and none registered globally. */
function tracingOff(provider: TracerProvider): boolean {
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NOOP_TRACER_PROVIDER;
}

/**
 * The telemetry plugin: OpenTelemetry traces and metrics of every enqueue and every attempt,
 * following the messaging semantic conventions. It uses @opentelemetry/api only; the user brings
 * the SDK. Providers are read when Stem applies the plugin: register the SDK before
 * `Stem.create()`. With none registered it taps no hook at all and costs nothing.
 *
 * @example const stem = await Stem.create({ plugins: [redis({ url }), telemetry()] });
 */
export function telemetry(options: TelemetryOptions = {}): StemPlugin {
  const resolved = resolveTelemetryOptions(options);
  let tracer: TaskTracer | undefined;
  let taskMetrics: TaskMetrics | undefined;
  return {
    name: 'telemetry',
    apply(stem) {
      const tracerProvider = resolved.tracerProvider ?? trace.getTracerProvider();
      tracer = tracingOff(tracerProvider)
        ? undefined
        : new TaskTracer(tracerProvider.getTracer(INSTRUMENTATION_SCOPE), resolved.parentOnCreation);
      const meter = (resolved.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE);
      taskMetrics = meter === createNoopMeter() ? undefined : new TaskMetrics(meter, () => stem.broker);
      const spans = tracer;
      const counts = taskMetrics;
      const hooks = stem.hooks;
      if (spans !== undefined) {
        hooks.enqueue.tap({ name: 'telemetry', stage: ENQUEUE_STAGE }, (envelope) => {
          spans.send(envelope);
          return envelope;
        });
        hooks.execute.tap('telemetry', (runner, ctx) => spans.process(runner, ctx));
        hooks.notPublished.tap('telemetry', (envelopes, error) => spans.unsent(envelopes, error));
      }
      if (spans === undefined && counts === undefined) return;
      hooks.published.tap('telemetry', (envelopes) => {
        spans?.sent(envelopes);
        counts?.sent(envelopes);
      });
      hooks.result.tap('telemetry', (outcome) => {
        spans?.concluded(outcome);
        counts?.concluded(outcome);
      });
      hooks.workerStart.tap('telemetry', (worker) => counts?.workerStarted(worker));
      hooks.workerStop.tap('telemetry', (worker) => {
        spans?.workerStopped(worker.id);
        counts?.workerStopped(worker);
      });
    },
    async close() {
      tracer?.close();
      taskMetrics?.close();
      tracer = undefined;
      taskMetrics = undefined;
    },
  };
}
