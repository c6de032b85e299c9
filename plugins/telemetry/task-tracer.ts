import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import { isBroadcastAddress, LINKS_HEADER, type Envelope } from '../../sdk/envelope.js';
import type { Outcome, Runner } from '../../sdk/hooks.js';
import type { TaskContext } from '../../sdk/task.js';
import { ATTR, DestinationCache, MESSAGING_SYSTEM, SPAN_EVENT } from './messaging-attributes.js';

/** The consumer group a delivery was read with: the queue's, or the worker's own for a broadcast. */
export function consumerGroupOf(queue: string, workerId: string): string {
  return isBroadcastAddress(queue) ? workerId : queue;
}

/**
 * The spans of the messaging conventions: a PRODUCER `send <queue>` span per enqueued envelope,
 * whose context travels in the envelope's `traceparent`/`tracestate` headers, and a CONSUMER
 * `process <queue>` span per attempt, linked to (and by default parented on) that context and
 * active while the handler runs, so what the handler enqueues joins the trace.
 */
export class TaskTracer {
  private readonly sending = new WeakMap<Envelope, Span>();
  /** Process spans not yet ended, by worker id, so a worker's stop can end the ones it returned to the queue. */
  private readonly processing = new Map<string, Map<Envelope, Span>>();
  private readonly sendNames = new DestinationCache((queue) => `send ${queue}`);
  private readonly processNames = new DestinationCache((queue) => `process ${queue}`);

  constructor(
    private readonly tracer: Tracer,
    private readonly parentOnCreation: boolean,
  ) {}

  /** Starts the send span of `envelope` under the active context and injects its context into the headers. */
  send(envelope: Envelope): void {
    const headers = envelope.headers;
    let parent = context.active();
    // A caller with no span of its own may pass a trace context in the headers: continue that trace.
    if (headers.traceparent !== undefined && trace.getSpan(parent) === undefined) parent = propagation.extract(parent, headers);
    const span = this.tracer.startSpan(
      this.sendNames.get(envelope.queue),
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [ATTR.system]: MESSAGING_SYSTEM,
          [ATTR.destination]: envelope.queue,
          [ATTR.messageId]: envelope.id,
          [ATTR.operationType]: 'send',
          [ATTR.operationName]: 'send',
          [ATTR.taskName]: envelope.name,
          [ATTR.taskAttempt]: envelope.attempt,
        },
      },
      parent,
    );
    if (!isSpanContextValid(span.spanContext())) return;
    if (span.isRecording()) this.sending.set(envelope, span);
    // A tracestate of the caller's context is carried by the new span's context; a stale one must not survive.
    if (headers.tracestate !== undefined) delete headers.tracestate;
    propagation.inject(trace.setSpan(parent, span), headers);
  }

  /** Ends the send spans of envelopes the broker accepted. */
  sent(envelopes: readonly Envelope[]): void {
    for (const envelope of envelopes) {
      const span = this.sending.get(envelope);
      if (span === undefined) continue;
      this.sending.delete(envelope);
      span.end();
    }
  }

  /** Ends the send spans of envelopes that were not published: as errors when the publish failed. */
  unsent(envelopes: readonly Envelope[], error: unknown): void {
    for (const envelope of envelopes) {
      const span = this.sending.get(envelope);
      if (span === undefined) continue;
      this.sending.delete(envelope);
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : new Error(String(error)));
        span.setAttribute(ATTR.errorType, error instanceof Error ? error.name : 'Error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      span.end();
    }
  }

  /** Starts the process span of an attempt and returns a runner that runs the handler with it active. */
  process(runner: Runner, ctx: TaskContext): Runner {
    const { span, parent } = this.startProcessSpan(ctx.envelope, ctx.queue, ctx.workerId);
    if (span.isRecording()) this.openRuns(ctx.workerId).set(ctx.envelope, span);
    if (!isSpanContextValid(span.spanContext())) return runner;
    const active = trace.setSpan(parent, span);
    return (runContext) => context.with(active, runner, undefined, runContext);
  }

  /** Records how an attempt ended on its process span (exception, retry, dead letter, cancel) and ends it. */
  concluded(outcome: Outcome): void {
    const { envelope, worker } = outcome;
    const runs = this.processing.get(worker.id);
    let span = runs?.get(envelope);
    if (span !== undefined) {
      runs!.delete(envelope);
    } else {
      // Ran, but its span was sampled out.
      if (outcome.startedAt !== 0) return;
      // Dead-lettered or cancelled before it ran (unregistered, expired, refused at dispatch): a span still shows it.
      span = this.startProcessSpan(envelope, outcome.delivery.queue, worker.id).span;
      if (!span.isRecording()) return;
    }
    const error = outcome.error;
    switch (outcome.state) {
      case 'retried':
      case 'failed':
        if (error !== undefined) {
          span.recordException({ name: error.type, message: error.message, stack: error.stack });
          span.setAttribute(ATTR.errorType, error.type);
          span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.type}: ${error.message}` });
        }
        if (outcome.state === 'retried') {
          span.addEvent(SPAN_EVENT.retry, {
            [ATTR.retryDelayMs]: outcome.retryDelayMs ?? 0,
            [ATTR.retryNextAttempt]: envelope.attempt + 1,
          });
        } else {
          span.addEvent(SPAN_EVENT.deadLetter, { [ATTR.deadLetterReason]: outcome.reason ?? 'unknown' });
        }
        break;
      case 'cancelled':
        span.addEvent(SPAN_EVENT.cancel, { [ATTR.cancelReason]: outcome.reason ?? error?.message ?? 'cancelled' });
        break;
      case 'succeeded':
        break;
    }
    span.end();
  }

  /** Ends the spans of attempts a stopping worker aborted and returned to their queue. */
  workerStopped(workerId: string): void {
    const runs = this.processing.get(workerId);
    if (runs === undefined) return;
    this.processing.delete(workerId);
    for (const span of runs.values()) {
      span.addEvent(SPAN_EVENT.returnedToQueue);
      span.end();
    }
  }

  /** Ends every span still open (the plugin is closing). */
  close(): void {
    for (const workerId of [...this.processing.keys()]) this.workerStopped(workerId);
  }

  private openRuns(workerId: string): Map<Envelope, Span> {
    let runs = this.processing.get(workerId);
    if (runs === undefined) {
      runs = new Map();
      this.processing.set(workerId, runs);
    }
    return runs;
  }

  private startProcessSpan(envelope: Envelope, queue: string, workerId: string): { span: Span; parent: Context } {
    const creation = propagation.extract(ROOT_CONTEXT, envelope.headers);
    const creationSpan = trace.getSpanContext(creation);
    const options: SpanOptions = {
      kind: SpanKind.CONSUMER,
      attributes: {
        [ATTR.system]: MESSAGING_SYSTEM,
        [ATTR.destination]: queue,
        [ATTR.messageId]: envelope.id,
        [ATTR.operationType]: 'process',
        [ATTR.operationName]: 'process',
        [ATTR.consumerGroup]: consumerGroupOf(queue, workerId),
        [ATTR.clientId]: workerId,
        [ATTR.taskName]: envelope.name,
        [ATTR.taskAttempt]: envelope.attempt,
      },
    };
    const links: Link[] = [];
    if (creationSpan !== undefined && isSpanContextValid(creationSpan)) links.push({ context: creationSpan });
    // A chord callback lists its members' traceparents: link to each member's trace.
    const linked = envelope.headers[LINKS_HEADER];
    if (linked !== undefined) {
      for (const traceparent of linked.split(',')) {
        const member = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent }));
        if (member !== undefined && isSpanContextValid(member)) links.push({ context: member });
      }
    }
    if (links.length > 0) options.links = links;
    const parent = this.parentOnCreation ? creation : ROOT_CONTEXT;
    return { span: this.tracer.startSpan(this.processNames.get(queue), options, parent), parent };
  }
}
