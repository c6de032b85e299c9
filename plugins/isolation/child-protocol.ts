import { Retry, StemError, Unrecoverable } from '../../sdk/errors.js';

/** How an isolated task runs: in a worker thread or in a child process. */
export type IsolateMode = 'thread' | 'process';

/** An error as it crosses the boundary: enough to rebuild its name, message, stack, code and retry hints. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  countdownMs?: number;
}

/** What the child sees of the task's context (the rest of `ctx` is proxied by messages). */
export interface WireContext {
  id: string;
  name: string;
  attempt: number;
  maxRetries: number;
  queue: string;
  headers: Record<string, string>;
  meta: Record<string, unknown>;
  workerId: string;
  envelope: unknown;
}

/** Parent to child. */
export type ToChild =
  | { t: 'run'; task: string; module: string | undefined; args: unknown; ctx: WireContext; traceparent: string | undefined }
  | { t: 'abort'; reason: WireError }
  | { t: 'soft'; reason: WireError }
  | { t: 'reply'; call: number; ok: true; value: unknown }
  | { t: 'reply'; call: number; ok: false; error: WireError };

/** A call the child makes on the parent's `ctx`. */
export type ChildCall =
  | { op: 'progress'; value: unknown }
  | { op: 'heartbeat' }
  | { op: 'enqueue'; task: string; args: unknown; options: Record<string, unknown> | undefined }
  | { op: 'status'; id: string }
  | { op: 'result'; id: string; timeoutMs: number | undefined };

/** What the child reports of its memory after each task. */
export interface ChildMemory {
  rss: number;
  heapUsed: number;
}

/** Child to parent. */
export type FromChild =
  | { t: 'ready' }
  | { t: 'call'; call: number; request: ChildCall }
  | { t: 'done'; ok: true; value: unknown; memory: ChildMemory }
  | { t: 'done'; ok: false; error: WireError; memory: ChildMemory }
  | { t: 'fatal'; error: WireError };

/** The boot data a child reads (workerData for a thread, an environment variable for a process). */
export interface ChildBoot {
  mode: IsolateMode;
  /** Modules imported before any task (an OpenTelemetry SDK, a logger). */
  setup: string[];
  /** Modules searched for a task that names no module of its own. */
  modules: string[];
  /** Prefix each line the running task writes to stdout/stderr with `name[id] `. */
  tagOutput: boolean;
}

/** The environment variable a child process reads its boot data from. */
export const BOOT_ENV = 'STEM_ISOLATION_BOOT';

/** Turns anything thrown into a WireError. */
export function toWireError(thrown: unknown): WireError {
  if (thrown instanceof Error) {
    const wire: WireError = { name: thrown.name || 'Error', message: thrown.message };
    if (thrown.stack) wire.stack = thrown.stack;
    const code = (thrown as { code?: unknown }).code;
    if (typeof code === 'string') wire.code = code;
    if (thrown instanceof Retry && thrown.countdownMs !== undefined) wire.countdownMs = thrown.countdownMs;
    return wire;
  }
  let message: string;
  try {
    message = typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown));
  } catch {
    message = String(thrown);
  }
  return { name: 'NonErrorThrown', message: `the handler threw a non-Error value: ${message}` };
}

/**
 * Rebuilds an error on the other side: `Retry` and `Unrecoverable` as themselves (the retry policy
 * tests them by class), an error with a string `code` as a StemError carrying it, any other as an
 * Error; each keeps its original name, message and stack.
 */
export function fromWireError(wire: WireError): Error {
  let error: Error;
  if (wire.name === 'Retry' && wire.code === 'retry') error = new Retry({ countdownMs: wire.countdownMs, reason: wire.message });
  else if (wire.name === 'Unrecoverable' && wire.code === 'unrecoverable') error = new Unrecoverable(wire.message);
  else if (wire.code !== undefined) error = new StemError(wire.code, wire.message);
  else error = new Error(wire.message);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
