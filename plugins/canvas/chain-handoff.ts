import type { TaskState, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { ExitCode, StemError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import type { EnqueueRequest } from '../../sdk/producer.js';
import { toTaskError } from '../../sdk/task-error.js';
import { CanvasHandoffError, ChainStepFailedError } from './canvas-errors.js';
import { CANVAS_META, type ChainLink, type ChainStepRef } from './canvas-meta.js';
import { storedError, type TerminalOutcome } from './canvas-status.js';
import { withParent, type SignatureSpec } from './signature.js';

/** The task name a chain's status record carries. */
export const CHAIN_RECORD_NAME = 'stem.chain';

/** The chain's status record: `running` while steps remain, then the last step's result or which step stopped it. */
export function chainRecord(link: Pick<ChainLink, 'id' | 'steps'>, state: TaskState, extra: Partial<TaskStatus> = {}, detail: Record<string, unknown> = {}): TaskStatus {
  return { id: link.id, state, name: CHAIN_RECORD_NAME, attempt: 0, updatedAt: Date.now(), ...extra, meta: { [CANVAS_META.chain]: { steps: link.steps, ...detail } } };
}

/** The enqueue of chain step `spec` at `index`, carrying the steps after it and the parent's result. */
export function chainStepRequest(link: Pick<ChainLink, 'id' | 'steps'>, index: number, spec: SignatureSpec, rest: SignatureSpec[], parent: { result: unknown } | undefined): EnqueueRequest & { task: string } {
  const meta: Record<string, unknown> = { ...spec.options.meta };
  const next: ChainLink = { id: link.id, index, steps: link.steps, rest };
  meta[CANVAS_META.chain] = next;
  let args = spec.args;
  if (parent !== undefined && !spec.immutable) {
    meta[CANVAS_META.parentResult] = parent.result;
    args = withParent(spec.args, parent.result);
  }
  return { task: spec.name, args, options: { ...spec.options, meta } };
}

/**
 * Moves a chain on from the worker that finished one of its steps, so no client has to stay
 * online: a success enqueues the next step with this result as its parent (or, after the last
 * step, marks the chain succeeded with that result); a failure or cancel ends the chain, naming
 * the step.
 */
export class ChainHandoff {
  constructor(private readonly stem: Stem) {}

  /** Handles a terminal outcome of step `link.index`. */
  async advance(link: ChainLink, outcome: TerminalOutcome): Promise<void> {
    const ttl = { ttlMs: this.stem.settings.resultTtlMs };
    const backend = this.stem.backend;
    const step: ChainStepRef = { id: outcome.envelope.id, name: outcome.envelope.name };
    const total = link.steps.length;
    if (outcome.state === 'failed' || outcome.state === 'cancelled') {
      const error = new ChainStepFailedError(link.id, link.index, total, step, outcome.state, outcome.error ?? { type: 'Error', message: 'unknown error' });
      await backend.set([chainRecord(link, outcome.state, { error: storedError(error) }, { failedStep: link.index, failedTaskId: step.id })], ttl);
      return;
    }
    const result = outcome.result ?? null;
    const [next, ...rest] = link.rest;
    if (next === undefined) {
      await backend.set([chainRecord(link, 'succeeded', { result })], ttl);
      return;
    }
    const index = link.index + 1;
    const request = chainStepRequest(link, index, next, rest, { result });
    // Written before the enqueue: once enqueued, the next step may end the chain at any moment.
    await backend.set([chainRecord(link, 'running', { progress: { step: index, of: total, taskId: next.options.id } })], ttl);
    try {
      await this.stem.enqueue(request.task, request.args, request.options);
    } catch (error) {
      // A refused enqueue would be refused again on redelivery; a transport error is worth the redelivery.
      if (!(error instanceof StemError && error.exitCode === ExitCode.usage)) throw error;
      const handoff = new CanvasHandoffError(`chain ${link.id}: step ${index + 1} of ${total} (${next.name})`, toTaskError(error));
      process.emitWarning(`canvas: ${handoff.message}`, 'StemCanvasWarning');
      await backend.set([chainRecord(link, 'failed', { error: storedError(handoff) }, { failedStep: index, failedTaskId: next.options.id })], ttl);
    }
  }
}
