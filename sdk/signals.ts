import type { TaskError } from './contracts/result-backend.js';
import type { Envelope } from './envelope.js';

/** Every signal and its payload. */
export interface SignalPayloads {
  'task-received': { envelope: Envelope; workerId: string };
  'task-started': { envelope: Envelope; workerId: string };
  'task-succeeded': { envelope: Envelope; workerId: string; result: unknown; durationMs: number };
  'task-failed': { envelope: Envelope; workerId: string; error: TaskError; reason: string; durationMs: number };
  'task-retried': { envelope: Envelope; workerId: string; error: TaskError; delayMs: number };
  'task-cancelled': { envelope: Envelope; workerId: string; reason: string };
  'task-revoked': { taskId: string; workerId: string; terminate: boolean; envelope?: Envelope };
  'worker-ready': { workerId: string; hostname: string; queues: readonly string[]; broadcasts: readonly string[] };
  'worker-stopping': { workerId: string; inflight: number };
  'worker-shutdown': { workerId: string };
  'worker-heartbeat': { workerId: string; stats: Record<string, number> };
  'worker-scaled': { workerId: string; from: number; to: number; reason: string };
}

/** A signal name: `task-succeeded`, `worker-ready`, … */
export type SignalName = keyof SignalPayloads;

type Listener<N extends SignalName> = (payload: SignalPayloads[N]) => void;

/**
 * A typed event bus for lifecycle milestones. Emitting a signal with no listener costs one map
 * lookup; a listener that throws is reported as a process warning and never breaks a worker.
 */
export class Signals {
  private readonly listeners = new Map<SignalName, Array<Listener<any>>>();

  /** Subscribes to a signal; returns a function that unsubscribes. */
  on<N extends SignalName>(name: N, listener: Listener<N>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(listener);
    this.listeners.set(name, list);
    return () => this.off(name, listener);
  }

  /** Unsubscribes a listener. */
  off<N extends SignalName>(name: N, listener: Listener<N>): void {
    const list = this.listeners.get(name);
    if (!list) return;
    const index = list.indexOf(listener);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.listeners.delete(name);
  }

  /** True when someone listens to `name` (check before building a costly payload). */
  has(name: SignalName): boolean {
    return this.listeners.has(name);
  }

  /** Calls every listener of `name` with `payload`. */
  emit<N extends SignalName>(name: N, payload: SignalPayloads[N]): void {
    const list = this.listeners.get(name);
    if (!list) return;
    for (const listener of [...list]) {
      try {
        listener(payload);
      } catch (error) {
        process.emitWarning(`a "${name}" signal listener threw: ${(error as Error)?.message ?? String(error)}`, 'StemSignalWarning');
      }
    }
  }
}
