import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import { ExitCode, StemError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { toTaskError } from '../../sdk/task-error.js';
import { CanvasHandoffError, ChainStepFailedError } from './canvas-errors.js';
import type { ChainLink, MemberOf } from './canvas-meta.js';
import { storedError } from './canvas-status.js';
import type { Arrival } from './chord-barrier.js';
import { specId } from './compose.js';
import { Launch, chainRecord } from './launch.js';

/** Records a nested chain's end in the group or chord it belongs to, as reached by `arrival`. */
export type SettleMember = (memberOf: MemberOf, status: TaskStatus, arrival: Arrival) => Promise<void>;

/**
 * Moves a chain on from the worker that finished one of its steps, so no client has to stay
 * online: a success sends the next step (a task, or a chord) with this result as its parent (or,
 * after the last step, marks the chain succeeded with that result); a failure or cancel ends the
 * chain, naming the step. A chain that is a group or chord member then reports its end there.
 */
export class ChainHandoff {
  constructor(
    private readonly stem: Stem,
    private readonly settle: SettleMember,
  ) {}

  /** Handles the terminal status of step `link.index` (a task's, or a chord step's callback or failure), reached by `arrival`. */
  async advance(link: ChainLink, status: TaskStatus, arrival: Arrival): Promise<void> {
    const step = { id: status.id, name: status.name ?? '' };
    const total = link.steps.length;
    if (status.state === 'failed' || status.state === 'cancelled') {
      const error = new ChainStepFailedError(
        link.id,
        link.index,
        total,
        step,
        status.state,
        status.error ?? { type: 'Error', message: 'unknown error' },
      );
      await this.end(
        link,
        chainRecord(link, status.state, { error: storedError(error) }, { failedStep: link.index, failedTaskId: step.id }),
        arrival,
      );
      return;
    }
    const result = status.result ?? null;
    const [next, ...rest] = link.rest;
    if (next === undefined) {
      await this.end(link, chainRecord(link, 'succeeded', { result }), arrival);
      return;
    }
    const index = link.index + 1;
    const launch = new Launch(this.stem);
    launch.step(link, index, next, rest, { result });
    // Written before the send: once sent, the next step may end the chain at any moment.
    await this.stem.backend.set([chainRecord(link, 'running', { progress: { step: index, of: total, taskId: specId(next) } })], {
      ttlMs: this.stem.settings.resultTtlMs,
    });
    try {
      await launch.run();
    } catch (error) {
      // A refused enqueue would be refused again on redelivery; a transport error is worth the redelivery.
      if (!(error instanceof StemError && error.exitCode === ExitCode.usage)) throw error;
      const name = 'kind' in next ? `chord ${next.id}` : next.name;
      const handoff = new CanvasHandoffError(`chain ${link.id}: step ${index + 1} of ${total} (${name})`, toTaskError(error));
      process.emitWarning(`canvas: ${handoff.message}`, 'StemCanvasWarning');
      await this.end(
        link,
        chainRecord(link, 'failed', { error: storedError(handoff) }, { failedStep: index, failedTaskId: specId(next) }),
        arrival,
      );
    }
  }

  /** Writes the chain's final record and, for a nested chain, records its end in its group or chord. */
  private async end(link: ChainLink, record: TaskStatus, arrival: Arrival): Promise<void> {
    await this.stem.backend.set([record], { ttlMs: this.stem.settings.resultTtlMs });
    if (link.memberOf !== undefined) await this.settle(link.memberOf, record, arrival);
  }
}
