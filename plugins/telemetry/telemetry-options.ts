import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { ConfigError } from '../../sdk/errors.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';

/** Options of `telemetry()`. */
export interface TelemetryOptions {
  /** Where spans go (default: the global tracer provider, `trace.setGlobalTracerProvider`). */
  tracerProvider?: TracerProvider;
  /** Where metrics go (default: the global meter provider, `metrics.setGlobalMeterProvider`). */
  meterProvider?: MeterProvider;
  /**
   * Make each `process` span a child of the `send` span that created the task (default true), so
   * a task, its retries and what it enqueues share one trace. False: each attempt starts a new
   * trace; the creation context is still linked.
   */
  parentOnCreation?: boolean;
}

/** The keys of {@link TelemetryOptions}. */
const TELEMETRY_OPTION_KEYS = {
  tracerProvider: true,
  meterProvider: true,
  parentOnCreation: true,
} as const satisfies OptionKeys<TelemetryOptions>;

/** Options with defaults applied. */
export interface ResolvedTelemetryOptions {
  tracerProvider: TracerProvider | undefined;
  meterProvider: MeterProvider | undefined;
  parentOnCreation: boolean;
}

/** Checks `telemetry()` options when the plugin is created; throws ConfigError naming the option. */
export function resolveTelemetryOptions(options: TelemetryOptions): ResolvedTelemetryOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`telemetry(): options must be an object such as { parentOnCreation: true }, got ${JSON.stringify(options)}`);
  }
  assertKnownOptions('telemetry()', options, TELEMETRY_OPTION_KEYS);
  const { tracerProvider, meterProvider, parentOnCreation = true } = options;
  if (tracerProvider !== undefined && typeof (tracerProvider as Partial<TracerProvider>).getTracer !== 'function') {
    throw new ConfigError(
      'telemetry(): tracerProvider must be an OpenTelemetry TracerProvider (an object with getTracer()), e.g. a BasicTracerProvider',
    );
  }
  if (meterProvider !== undefined && typeof (meterProvider as Partial<MeterProvider>).getMeter !== 'function') {
    throw new ConfigError(
      'telemetry(): meterProvider must be an OpenTelemetry MeterProvider (an object with getMeter()), e.g. a MeterProvider of ' +
        '@opentelemetry/sdk-metrics',
    );
  }
  if (typeof parentOnCreation !== 'boolean') {
    throw new ConfigError(`telemetry(): parentOnCreation must be true or false, got ${JSON.stringify(parentOnCreation)}`);
  }
  return { tracerProvider, meterProvider, parentOnCreation };
}
