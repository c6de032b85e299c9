import type { TaskError, TaskStatus } from '../../sdk/contracts/result-backend.js';
import type { Outcome } from '../../sdk/hooks.js';
import type { StemError } from '../../sdk/errors.js';

/** An attempt after which the task does not run again: succeeded, failed (retries used up) or cancelled. */
export type TerminalOutcome = Outcome & { state: Exclude<Outcome['state'], 'retried'> };

/** The terminal status of an attempt, as a group records it (the worker writes the same state right after). */
/** Where a member's status keeps its envelope's W3C traceparent. */
export const TRACEPARENT_META = 'stem.traceparent';

/** A terminal outcome as the status canvas records in groups and chains. */
export function terminalStatus(outcome: TerminalOutcome): TaskStatus {
  const { envelope } = outcome;
  const status: TaskStatus = {
    id: envelope.id,
    state: outcome.state,
    name: envelope.name,
    queue: envelope.queue,
    attempt: envelope.attempt,
    workerId: outcome.worker.id,
    updatedAt: Date.now(),
  };
  if (outcome.state === 'succeeded') status.result = outcome.result ?? null;
  if (outcome.error !== undefined) status.error = outcome.error;
  // Kept so that a chord's callback can link its spans to its members' (see LINKS_HEADER in sdk/envelope.ts).
  const traceparent = envelope.headers.traceparent;
  if (traceparent !== undefined) status.meta = { [TRACEPARENT_META]: traceparent };
  return status;
}

/** A canvas error as stored: type, message and code, without the plugin's own stack (it says nothing about the task). */
export function storedError(error: StemError): TaskError {
  return { type: error.name, message: error.message, code: error.code };
}

/** A plain-data copy of an error for a callback's meta. */
export function briefError(error: TaskError | undefined): { type: string; message: string } {
  return { type: error?.type ?? 'Error', message: error?.message ?? 'unknown error' };
}
