import { broadcastAddress, type Envelope } from '../../sdk/envelope.js';
import { ConfigError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';

/** The envelope name of a control request; it never reaches a task handler. */
export const CONTROL_REQUEST = 'stem.control.request';
/** The envelope name of a worker's reply to a control request. */
export const CONTROL_REPLY = 'stem.control.reply';

/** A control request as it travels on `broadcast://<namespace>.control`. */
export interface ControlRequest {
  /** Shared by every reply to this request. */
  requestId: string;
  /** The command: ping, stats, inspect, pause, resume, shutdown, or one a plugin handles (revoke, rate-limit). */
  command: string;
  /** The command's JSON arguments. */
  args: Record<string, unknown>;
  /** Only these worker ids act and reply; every worker when absent. */
  destination?: string[];
}

/** One worker's answer, published on `broadcast://<namespace>.control.replies`. */
export interface ControlReply {
  /** The request it answers. */
  requestId: string;
  /** The worker that answers. */
  workerId: string;
  /** Its host. */
  hostname: string;
  /** Its process id. */
  pid: number;
  /** False when the command failed or nobody on the worker handles it. */
  ok: boolean;
  /** The command's answer, when ok. */
  reply?: unknown;
  /** Why it failed, when not ok. */
  error?: string;
}

/** The broadcast channel workers listen to for control requests. */
export function requestChannel(namespace: string): string {
  return `${namespace}.control`;
}

/** The broadcast channel control clients listen to for replies. */
export function replyChannel(namespace: string): string {
  return `${namespace}.control.replies`;
}

/** Checks a control namespace option; returns it. */
export function checkNamespace(namespace: unknown, where: string): string {
  if (typeof namespace !== 'string' || !/^[\w.:-]+$/.test(namespace)) {
    throw new ConfigError(`${where}: option "namespace" must be letters, digits, '.', ':', '_' or '-' (got ${JSON.stringify(namespace)})`);
  }
  return namespace;
}

/** Wraps a request or reply into an envelope addressed to a broadcast channel; it expires after `ttlMs`. */
export function controlEnvelope(channel: string, name: string, body: ControlRequest | ControlReply, ttlMs: number): Envelope {
  const now = Date.now();
  return {
    id: uuidv7(now),
    name,
    args: body,
    headers: {},
    queue: broadcastAddress(channel),
    priority: 9,
    attempt: 0,
    maxRetries: 0,
    visibilityTimeoutMs: 30_000,
    createdAt: now,
    expiresAt: now + ttlMs,
    meta: {},
  };
}

/** The request an envelope carries, or undefined for anything else (a stray or expired message). */
export function readRequest(envelope: Envelope, now: number): ControlRequest | undefined {
  if (envelope.name !== CONTROL_REQUEST || (envelope.expiresAt !== undefined && envelope.expiresAt <= now)) return undefined;
  const body = envelope.args as Partial<ControlRequest> | null;
  if (typeof body?.requestId !== 'string' || typeof body.command !== 'string') return undefined;
  const args = typeof body.args === 'object' && body.args !== null ? body.args : {};
  const request: ControlRequest = { requestId: body.requestId, command: body.command, args };
  if (Array.isArray(body.destination)) request.destination = body.destination.filter((id): id is string => typeof id === 'string');
  return request;
}

/** The reply an envelope carries for `requestId`, or undefined. */
export function readReply(envelope: Envelope, requestId: string): ControlReply | undefined {
  if (envelope.name !== CONTROL_REPLY) return undefined;
  const body = envelope.args as Partial<ControlReply> | null;
  return body?.requestId === requestId && typeof body.workerId === 'string' ? (body as ControlReply) : undefined;
}
