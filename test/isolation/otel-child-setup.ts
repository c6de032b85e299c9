// A setup module of the isolation telemetry test: what a user's child would do to see the trace
// context (register a context manager, or a whole OpenTelemetry SDK).
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
