import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { metrics } from '@opentelemetry/api';
import type { StemConfig } from '../../sdk/config.js';
import { UsageError } from '../../sdk/errors.js';
import { telemetry } from './telemetry-plugin.js';

/** An OpenTelemetry SDK started for `--otel`, exporting over OTLP. */
export interface OtelExport {
  /** The packages it was started with, e.g. `@opentelemetry/sdk-node`. */
  via: string;
  /** Flushes what is buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

/** The one-line message when `--otel` finds no SDK: what to install, or how to run without it. */
export const OTEL_MISSING_MESSAGE =
  '--otel (STEM_OTEL): no OpenTelemetry SDK is installed; run `npm install @opentelemetry/sdk-node` (or ' +
  '@opentelemetry/sdk-trace-node and @opentelemetry/exporter-trace-otlp-http) in your project, or start the worker without --otel';

type Module = Record<string, unknown>;
type Constructor = new (...args: any[]) => any;

/** True when STEM_OTEL asks for OTLP export (`1`, `true`, `yes`, `on`). */
export function otelRequested(env: NodeJS.ProcessEnv): boolean {
  return /^(1|true|yes|on)$/i.test(env.STEM_OTEL ?? '');
}

/**
 * Loads a package the user installed: resolved from their project (`cwd`) first, then from
 * Stem's own location; undefined when neither has it. Stem never depends on the SDK itself.
 */
async function importInstalled(name: string, cwd: string): Promise<Module | undefined> {
  let file: string | undefined;
  for (const base of [join(cwd, 'package.json'), import.meta.url]) {
    try {
      file = createRequire(base).resolve(name);
      break;
    } catch {
      // Not installed there: try the next place.
    }
  }
  if (file === undefined) return undefined;
  const loaded = (await import(pathToFileURL(file).href)) as Module & { default?: Module };
  // A CommonJS build may expose its exports only under `default`.
  return { ...loaded.default, ...loaded };
}

function exported(module: Module, name: string, from: string): Constructor {
  const value = module[name];
  if (typeof value !== 'function')
    throw new UsageError(`--otel: ${from} has no ${name} export; install a 2.x (sdk-trace-node) or 0.200+ (sdk-node) version`);
  return value as Constructor;
}

/** Starts @opentelemetry/sdk-node, which configures exporters from the OTEL_* variables. */
async function startNodeSdk(cwd: string): Promise<OtelExport | undefined> {
  const sdkNode = await importInstalled('@opentelemetry/sdk-node', cwd);
  if (sdkNode === undefined) return undefined;
  const NodeSDK = exported(sdkNode, 'NodeSDK', '@opentelemetry/sdk-node');
  const sdk = new NodeSDK();
  sdk.start();
  return { via: '@opentelemetry/sdk-node', shutdown: () => sdk.shutdown() };
}

/** Starts a NodeTracerProvider exporting spans over OTLP/HTTP (and metrics, when that exporter is installed too). */
async function startTraceSdk(cwd: string): Promise<OtelExport | undefined> {
  const [traceNode, traceExporter] = await Promise.all([
    importInstalled('@opentelemetry/sdk-trace-node', cwd),
    importInstalled('@opentelemetry/exporter-trace-otlp-http', cwd),
  ]);
  if (traceNode === undefined || traceExporter === undefined) return undefined;
  const NodeTracerProvider = exported(traceNode, 'NodeTracerProvider', '@opentelemetry/sdk-trace-node');
  const BatchSpanProcessor = exported(traceNode, 'BatchSpanProcessor', '@opentelemetry/sdk-trace-node');
  const OTLPTraceExporter = exported(traceExporter, 'OTLPTraceExporter', '@opentelemetry/exporter-trace-otlp-http');
  // The exporter reads OTEL_EXPORTER_OTLP_* itself; the provider reads OTEL_TRACES_SAMPLER and the resource variables.
  const tracerProvider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  tracerProvider.register();
  const stops: Array<() => Promise<void>> = [() => tracerProvider.shutdown()];
  let via = '@opentelemetry/sdk-trace-node + @opentelemetry/exporter-trace-otlp-http';
  const [sdkMetrics, metricExporter] = await Promise.all([
    importInstalled('@opentelemetry/sdk-metrics', cwd),
    importInstalled('@opentelemetry/exporter-metrics-otlp-http', cwd),
  ]);
  if (sdkMetrics !== undefined && metricExporter !== undefined) {
    const MeterProvider = exported(sdkMetrics, 'MeterProvider', '@opentelemetry/sdk-metrics');
    const PeriodicExportingMetricReader = exported(sdkMetrics, 'PeriodicExportingMetricReader', '@opentelemetry/sdk-metrics');
    const OTLPMetricExporter = exported(metricExporter, 'OTLPMetricExporter', '@opentelemetry/exporter-metrics-otlp-http');
    const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() })] });
    metrics.setGlobalMeterProvider(meterProvider);
    stops.push(() => meterProvider.shutdown());
    via += ' + @opentelemetry/exporter-metrics-otlp-http';
  }
  return { via, shutdown: async () => void (await Promise.all(stops.map((stop) => stop()))) };
}

/** Where `startOtelExport` looks: the flag, the environment, and the project directory. */
export interface OtelExportOptions {
  /** `--otel` was given. */
  flag?: boolean;
  /** The environment (default process.env): STEM_OTEL, and the OTEL_* variables the SDK reads. */
  env?: NodeJS.ProcessEnv;
  /** The project whose node_modules hold the SDK (default process.cwd()). */
  cwd?: string;
}

/**
 * What `stem worker start --otel` (or STEM_OTEL=1) does before it creates the Stem: starts the
 * OpenTelemetry SDK the user installed (@opentelemetry/sdk-node, else sdk-trace-node with
 * exporter-trace-otlp-http), which exports over OTLP as the standard OTEL_* variables say, and
 * adds `telemetry()` to the config's plugins unless listed already. Undefined when neither the
 * flag nor STEM_OTEL asks; throws UsageError (exit 64) when no SDK is installed.
 */
export async function startOtelExport(config: StemConfig, options: OtelExportOptions = {}): Promise<OtelExport | undefined> {
  if (options.flag !== true && !otelRequested(options.env ?? process.env)) return undefined;
  const cwd = options.cwd ?? process.cwd();
  const started = (await startNodeSdk(cwd)) ?? (await startTraceSdk(cwd));
  if (started === undefined) throw new UsageError(OTEL_MISSING_MESSAGE);
  const plugins = (config.plugins ??= []);
  if (!plugins.some((plugin) => plugin.name === 'telemetry')) plugins.push(telemetry());
  return started;
}
