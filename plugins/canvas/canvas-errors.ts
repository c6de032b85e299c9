import type { TaskError } from '../../sdk/contracts/result-backend.js';
import { StemError } from '../../sdk/errors.js';

/** Why a chain stopped: a step failed or was cancelled. Stored (as a TaskError) in the chain's status record. */
export class ChainStepFailedError extends StemError {
  constructor(
    chainId: string,
    index: number,
    total: number,
    step: { id: string; name: string },
    state: 'failed' | 'cancelled',
    cause: TaskError,
  ) {
    const verb = state === 'cancelled' ? 'was cancelled' : 'failed';
    super(
      'chain-step-failed',
      `chain ${chainId}: step ${index + 1} of ${total} (${step.name}, task ${step.id}) ${verb}: ${cause.type}: ${cause.message}; ` +
        `the steps after it did not run`,
    );
  }
}

/** Why a chord failed without running its callback: a member failed or was cancelled. Stored under the chord id. */
export class ChordMemberFailedError extends StemError {
  constructor(chordId: string, index: number, total: number, member: { id: string; name: string }, callbackName: string, cause: TaskError) {
    super(
      'chord-member-failed',
      `chord ${chordId}: member ${index + 1} of ${total} (${member.name}, task ${member.id}) failed: ${cause.type}: ${cause.message}; ` +
        `the callback ${callbackName} did not run (create the chord with onError: 'continue' to run it with partial results)`,
    );
  }
}

/** The next chain step or a chord callback could not be enqueued by the worker that should have (e.g. the task is not registered there). */
export class CanvasHandoffError extends StemError {
  constructor(what: string, cause: TaskError) {
    super(
      'canvas-handoff-failed',
      `${what} could not be enqueued: ${cause.type}: ${cause.message}; register the task on every worker that runs the step before it`,
    );
  }
}

/**
 * A chord's claim is held by another worker that has neither fired the callback nor let its lease
 * end while this one waited: this member's delivery is left to be redelivered, and tries again.
 */
export class ChordClaimPendingError extends StemError {
  constructor(chordId: string, claimer: string, waitedMs: number) {
    super(
      'chord-claim-pending',
      `chord ${chordId}: its callback is claimed by ${claimer === '' ? 'another worker' : `worker ${claimer}`}, ` +
        'which neither fired it nor let its lease end ' +
        `within ${waitedMs}ms; this member will be redelivered and claim again (a claim whose lease ended unfired is taken over)`,
    );
  }
}
