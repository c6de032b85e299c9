/**
 * The runtime of an isolation child (a worker thread or a child process): it imports the setup
 * modules, then runs one task at a time as the parent asks, with a `ctx` whose progress, heartbeat
 * and enqueue are calls on the parent's `ctx`, and whose signals the parent fires.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { IsolatedTaskLoadError } from '../../sdk/errors.js';
import { isTaskDefinition, type TaskDefinition } from '../../sdk/task.js';
import {
  BOOT_ENV,
  type ChildBoot,
  type ChildCall,
  type FromChild,
  fromWireError,
  type ToChild,
  toWireError,
  type WireContext,
} from './child-protocol.js';
import { tagTaskOutput } from './task-output-tag.js';

const boot: ChildBoot = isMainThread ? JSON.parse(process.env[BOOT_ENV] ?? '{}') : (workerData as ChildBoot);

function send(message: FromChild): void {
  if (parentPort !== null) parentPort.postMessage(message);
  else process.send?.(message);
}

function onMessage(listener: (message: ToChild) => void): void {
  if (parentPort !== null) parentPort.on('message', listener);
  else process.on('message', listener as (message: unknown) => void);
}

/** The handlers found so far, by task name. */
const handlers = new Map<string, TaskDefinition['handler']>();
const loaded = new Set<string>();

async function load(url: string): Promise<void> {
  if (loaded.has(url)) return;
  const exports = (await import(url)) as Record<string, unknown>;
  loaded.add(url);
  // Each exported task, and those of a default export that is a task or an array of them (as --registry reads a module).
  const fallback = exports.default;
  const candidates = [...Object.values(exports), ...(Array.isArray(fallback) ? fallback : [])];
  for (const value of candidates) {
    if (isTaskDefinition(value) && !handlers.has(value.name)) handlers.set(value.name, value.handler);
  }
}

async function handlerOf(task: string, module: string | undefined): Promise<TaskDefinition['handler']> {
  const where = module !== undefined ? [module] : boot.modules;
  for (const url of where) {
    if (handlers.has(task)) break;
    try {
      await load(url);
    } catch (error) {
      throw new IsolatedTaskLoadError(task, `importing ${url} failed: ${(error as Error).message}`, { cause: error });
    }
  }
  const handler = handlers.get(task);
  if (handler === undefined) {
    throw new IsolatedTaskLoadError(
      task,
      where.length === 0 ? 'no module was named' : `no exported task named "${task}" in ${where.join(', ')}`,
    );
  }
  return handler;
}

let nextCall = 0;
const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

function call(request: ChildCall): Promise<unknown> {
  const id = ++nextCall;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ t: 'call', call: id, request });
  });
}

/** The running task's `name[id] ` tag for its output lines, when the pool tags output. */
let outputTag: string | undefined;
if (boot.tagOutput) {
  tagTaskOutput(process.stdout, () => outputTag);
  tagTaskOutput(process.stderr, () => outputTag);
}

/** The running task's signal controllers. */
let controller: AbortController | undefined;
let softController: AbortController | undefined;

function memory(): { rss: number; heapUsed: number } {
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed };
}

/** Runs the handler under the process span's trace context, when @opentelemetry/api is there to carry it. */
async function inTraceContext<T>(traceparent: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (traceparent === undefined) return fn();
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (match === null) return fn();
  let api: typeof import('@opentelemetry/api');
  try {
    api = await import('@opentelemetry/api');
  } catch {
    return fn();
  }
  const spanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true };
  return api.context.with(api.trace.setSpanContext(api.ROOT_CONTEXT, spanContext), fn);
}

async function run(message: Extract<ToChild, { t: 'run' }>): Promise<void> {
  controller = new AbortController();
  softController = new AbortController();
  const wire: WireContext = message.ctx;
  outputTag = `${wire.name}[${wire.id}] `;
  const ctx = {
    ...wire,
    signal: controller.signal,
    softSignal: softController.signal,
    progress: async (value: unknown) => {
      await call({ op: 'progress', value });
    },
    heartbeat: async () => {
      await call({ op: 'heartbeat' });
    },
    enqueue: async (task: string | { name: string }, args: unknown, options?: Record<string, unknown>) => {
      const name = typeof task === 'string' ? task : task.name;
      const handle = (await call({ op: 'enqueue', task: name, args, options })) as {
        id: string;
        name: string;
        queue: string;
        envelope: unknown;
      };
      return {
        ...handle,
        status: () => call({ op: 'status', id: handle.id }),
        result: (resultOptions: { timeoutMs?: number } = {}) => call({ op: 'result', id: handle.id, timeoutMs: resultOptions.timeoutMs }),
      };
    },
  };
  try {
    const handler = await handlerOf(message.task, message.module);
    const value = await inTraceContext(message.traceparent, async () => handler(message.args, ctx as never));
    send({ t: 'done', ok: true, value, memory: memory() });
  } catch (error) {
    send({ t: 'done', ok: false, error: toWireError(error), memory: memory() });
  } finally {
    controller = undefined;
    softController = undefined;
    outputTag = undefined;
  }
}

// An error that escaped the handler's awaited code fails the task it belongs to (there is one at a
// time), and the child exits: its state is unknown, the pool starts a fresh one.
function fatal(error: unknown): void {
  send({ t: 'fatal', error: toWireError(error) });
  setImmediate(() => process.exit(1));
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
// A child process whose worker died (kill -9) must not finish its task behind the back of the
// worker that will run it again: it exits as soon as its channel to the worker closes.
if (parentPort === null) process.on('disconnect', () => process.exit(0));

onMessage((message) => {
  switch (message.t) {
    case 'run':
      void run(message);
      return;
    case 'abort':
      controller?.abort(fromWireError(message.reason));
      return;
    case 'soft':
      softController?.abort(fromWireError(message.reason));
      return;
    case 'reply': {
      const waiter = pending.get(message.call);
      if (waiter === undefined) return;
      pending.delete(message.call);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(fromWireError(message.error));
      return;
    }
  }
});

for (const url of boot.setup ?? []) await import(url);
send({ t: 'ready' });
