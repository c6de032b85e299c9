import { AsyncResource } from 'node:async_hooks';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { IsolatedChildExitedError, TaskAsyncError } from '../../sdk/errors.js';
import type { EnqueueOptions, TaskContext } from '../../sdk/task.js';
import type { TaskHandle } from '../../sdk/task-handle.js';
import type { ChildPool } from './child-pool.js';
import { type ChildCall, type FromChild, fromWireError, toWireError } from './child-protocol.js';

/** The W3C traceparent of the span active now (the telemetry plugin's `process` span), if any. */
function activeTraceparent(): string | undefined {
  const span = trace.getActiveSpan()?.spanContext();
  if (span === undefined || !isSpanContextValid(span)) return undefined;
  return `00-${span.traceId}-${span.spanId}-${span.traceFlags.toString(16).padStart(2, '0')}`;
}

/**
 * Runs one attempt on a child of `pool`: sends the arguments and what the child sees of `ctx`,
 * answers the child's calls on `ctx` (progress, heartbeat, enqueue, a child task's status/result)
 * in the handler's async context (so a trace span or logger store active here covers them), fires
 * the child's `softSignal` and `signal`, and when `ctx.signal` aborts terminates the child after
 * `abortGraceMs` unless the handler gave up by then.
 */
export async function runIsolated(
  pool: ChildPool,
  ctx: TaskContext,
  module: string | undefined,
  abortGraceMs: number,
  softLimit: boolean,
): Promise<unknown> {
  const scope = new AsyncResource('StemIsolatedTask');
  const traceparent = activeTraceparent();
  const signal = ctx.signal;
  const child = await pool.acquire();
  if (signal.aborted) {
    // Aborted while it waited for a child: the run has settled already; the child goes back unused.
    pool.release(child);
    throw signal.reason;
  }
  const handles = new Map<string, TaskHandle<unknown>>();
  const answer = async (request: ChildCall): Promise<unknown> => {
    switch (request.op) {
      case 'progress':
        return ctx.progress(request.value);
      case 'heartbeat':
        return ctx.heartbeat();
      case 'enqueue': {
        const handle = await ctx.enqueue(request.task, request.args, request.options as EnqueueOptions | undefined);
        handles.set(handle.id, handle);
        return { id: handle.id, name: handle.name, queue: handle.queue, envelope: handle.envelope };
      }
      case 'status':
        return handles.get(request.id)?.status();
      case 'result': {
        const handle = handles.get(request.id);
        if (handle === undefined) throw new Error(`task ${request.id} was not enqueued by this handler`);
        return handle.result(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs });
      }
    }
  };

  return new Promise<unknown>((resolve, reject) => {
    let finished = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (): boolean => {
      if (finished) return false;
      finished = true;
      clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      if (softLimit) ctx.softSignal.removeEventListener('abort', onSoft);
      child.listen(undefined);
      return true;
    };
    const onAbort = (): void => {
      child.send({ t: 'abort', reason: toWireError(signal.reason) });
      const terminate = (): void => {
        if (!finish()) return;
        pool.retire(child, 'terminated');
        reject(signal.reason);
      };
      if (abortGraceMs <= 0) terminate();
      else graceTimer = setTimeout(terminate, abortGraceMs);
    };
    const onSoft = (): void => {
      child.send({ t: 'soft', reason: toWireError(ctx.softSignal.reason) });
    };
    child.listen((message: FromChild) => {
      switch (message.t) {
        case 'call':
          scope.runInAsyncScope(() =>
            answer(message.request).then(
              (value) => child.send({ t: 'reply', call: message.call, ok: true, value }),
              (error: unknown) => child.send({ t: 'reply', call: message.call, ok: false, error: toWireError(error) }),
            ),
          );
          return;
        case 'done':
          if (!finish()) return;
          child.tasks++;
          child.memory = message.memory;
          pool.release(child);
          if (message.ok) resolve(message.value);
          else reject(fromWireError(message.error));
          return;
        case 'fatal':
          // An error escaped the handler's awaited code; the child exits after saying so.
          if (!finish()) return;
          pool.retire(child, 'crashed');
          reject(new TaskAsyncError(ctx.id, 'uncaughtException', fromWireError(message.error)));
          return;
      }
    });
    void child.exited.then((exit) => {
      if (!finish()) return;
      pool.retire(child, 'crashed');
      reject(new IsolatedChildExitedError(ctx.id, pool.mode, exit.code, exit.signal, exit.detail));
    });
    signal.addEventListener('abort', onAbort, { once: true });
    // Without a soft limit, ctx.softSignal is one signal shared by every run that never aborts: not listened to.
    if (softLimit) ctx.softSignal.addEventListener('abort', onSoft, { once: true });
    const wire = {
      id: ctx.id,
      name: ctx.name,
      attempt: ctx.attempt,
      maxRetries: ctx.maxRetries,
      queue: ctx.queue,
      headers: { ...ctx.headers },
      meta: { ...ctx.meta },
      workerId: ctx.workerId,
      envelope: ctx.envelope,
    };
    if (!child.send({ t: 'run', task: ctx.name, module, args: ctx.envelope.args, ctx: wire, traceparent })) {
      // It died between the pool handing it out and now: `exited` fails the attempt.
      return;
    }
    if (softLimit && ctx.softSignal.aborted) onSoft();
  });
}
