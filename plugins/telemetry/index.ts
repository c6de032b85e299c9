export { telemetry, INSTRUMENTATION_SCOPE } from './telemetry-plugin.js';
export type { TelemetryOptions } from './telemetry-options.js';
export { startOtelExport, otelRequested, OTEL_MISSING_MESSAGE, type OtelExport, type OtelExportOptions } from './otel-export.js';
export { ATTR as TELEMETRY_ATTRIBUTES, SPAN_EVENT as TELEMETRY_SPAN_EVENTS } from './messaging-attributes.js';
