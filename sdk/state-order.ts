import type { TaskState, TaskStatus } from './contracts/result-backend.js';
import type { Envelope } from './envelope.js';

/**
 * The order of a task's states, which every result backend enforces when it writes one: a write
 * is applied only when it is not older than the stored state. Writes may then travel on any
 * connection in any order (the producer's `queued` on one, the worker's `succeeded` on another)
 * and the newest still wins.
 *
 * A state's position is (generation, attempt, phase), compared in that order:
 * - generation counts deliberate restarts (a dead-letter replay starts over at attempt 0, a
 *   worker's return at shutdown keeps the attempt): a new generation passes all the old one wrote;
 * - attempt counts retries;
 * - phase: queued < running < retried < a final state (succeeded, failed, cancelled).
 * Equal positions replace each other (progress updates of a running task), except that a final
 * state is never replaced by another state of the same position: the first outcome stands.
 */

/** Envelope meta key of the generation (absent means 0). */
export const GENERATION_META = 'stem.generation';

/** The phase of each state within one attempt. */
export const STATE_PHASE: Readonly<Record<TaskState, number>> = {
  pending: -1,
  queued: 0,
  running: 1,
  retried: 2,
  succeeded: 3,
  failed: 3,
  cancelled: 3,
};

/** The phase of the final states. */
export const FINAL_PHASE = 3;

/** A state's position: [generation, attempt, phase]. */
export type StatePosition = readonly [generation: number, attempt: number, phase: number];

/** Where `status` stands in its task's order of states. */
export function statePosition(status: Pick<TaskStatus, 'state' | 'attempt' | 'generation'>): StatePosition {
  return [status.generation ?? 0, status.attempt ?? 0, STATE_PHASE[status.state] ?? -1];
}

/**
 * True when writing `incoming` over `stored` keeps the order: `stored` is absent, older, or of
 * the same position and not final. Backends that cannot run this function (Lua, SQL) implement
 * the same rule; the contract suite in `stem/testing` checks that they agree.
 */
export function supersedes(incoming: TaskStatus, stored: TaskStatus | null | undefined): boolean {
  if (stored === null || stored === undefined) return true;
  const next = statePosition(incoming);
  const current = statePosition(stored);
  for (let i = 0; i < 3; i++) {
    if (next[i]! > current[i]!) return true;
    if (next[i]! < current[i]!) return false;
  }
  return current[2] !== FINAL_PHASE;
}

/** The generation an envelope's states carry. */
export function generationOf(meta: Readonly<Record<string, unknown>>): number {
  const value = meta[GENERATION_META];
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
}

/**
 * The same attempt of a task, sent back on purpose (a worker returning it at shutdown): the next
 * generation, so its `queued` passes the `running` the interrupted run wrote.
 */
export function nextGeneration(envelope: Envelope): Envelope {
  return { ...envelope, meta: { ...envelope.meta, [GENERATION_META]: generationOf(envelope.meta) + 1 } };
}

/**
 * A task started over on purpose (a dead-letter replay) on `queue`: attempt 0 of the next
 * generation, so its states pass the ones the old run left.
 */
export function startedOver(envelope: Envelope, queue: string): Envelope {
  return { ...nextGeneration(envelope), queue, attempt: 0 };
}
