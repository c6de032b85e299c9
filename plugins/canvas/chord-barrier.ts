import type { ChordClaimOptions, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { StemError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { Stem } from '../../sdk/kernel.js';
import type { EnqueueRequest } from '../../sdk/producer.js';
import { toTaskError } from '../../sdk/task-error.js';
import { CanvasHandoffError, ChordClaimPendingError, ChordMemberFailedError } from './canvas-errors.js';
import { CANVAS_META, type ChainLink, type ChordFailure, type ChordMembership } from './canvas-meta.js';
import { briefError, storedError, TRACEPARENT_META } from './canvas-status.js';
import { LINKS_HEADER } from '../../sdk/envelope.js';
import { withParent, type SignatureSpec } from './signature.js';

/** The enqueue of a chord's callback: under the chord id, with the ordered results as its parent result. */
export function callbackRequest(
  chordId: string,
  callback: SignatureSpec,
  results: unknown[],
  failures: ChordFailure[],
  memberTraceparents: string[] = [],
): EnqueueRequest & { task: string } {
  const meta: Record<string, unknown> = { ...callback.options.meta };
  if (!callback.immutable) meta[CANVAS_META.parentResult] = results;
  if (failures.length > 0) meta[CANVAS_META.chordFailures] = failures;
  const args = callback.immutable ? callback.args : withParent(callback.args, results);
  const options = { ...callback.options, id: chordId, meta };
  if (memberTraceparents.length > 0) options.headers = { ...callback.options.headers, [LINKS_HEADER]: memberTraceparents.join(',') };
  return { task: callback.name, args, options };
}

/**
 * Who reaches a barrier: the worker whose delivery ended a member, and that delivery's lease. A
 * chord claim lasts one such lease: a claimer that has not fired within it is taken for dead,
 * the rule a task's delivery follows.
 */
export interface Arrival {
  /** The worker id. */
  workerId: string;
  /** The visibility timeout of the member's delivery (ms). */
  leaseMs: number;
}

/** The first pause of a caller waiting on a live, unfired claim; it doubles up to the cap (ms). */
const CLAIM_POLL_FIRST_MS = 25;
const CLAIM_POLL_CAP_MS = 1_000;
/** At most this many of the waiter's own leases are spent waiting for a holder's lease to end. */
const HOLDER_LEASES_WAITED = 4;

/**
 * The chord barrier, run by whichever worker finishes a member: record the member's terminal state
 * in the body's group first, and when that makes the group complete (or a member failed under
 * `onError: 'fail'`), take the backend's atomic `claimChord`. Only the one caller that wins the
 * claim fires the callback or fails the chord, so two workers finishing the last two members at
 * once cannot both fire it, and neither can miss it (the later record always sees the full count).
 *
 * The claim carries a lease and is marked fired once the callback is enqueued (or the chord's
 * failure written). A claimer that dies in between leaves its member's delivery unacked: it is
 * redelivered, the redelivery completes the group again, waits out the dead claimer's lease and
 * takes the claim over, firing the callback under the same id (the chord id).
 */
export class ChordBarrier {
  constructor(
    private readonly stem: Stem,
    /** Moves on the chain a chord is a step of, when the chord fails without running its callback. */
    private readonly chainStepEnded: (link: ChainLink, status: TaskStatus, arrival: Arrival) => Promise<void>,
  ) {}

  /** Records a plain group member's terminal state. */
  async recordGroupMember(groupId: string, status: TaskStatus): Promise<void> {
    await this.record(groupId, status);
  }

  /** Records a chord member's terminal state and, if this caller closes the barrier, settles the chord. */
  async arrive(membership: ChordMembership, status: TaskStatus, arrival: Arrival): Promise<void> {
    const counts = await this.record(membership.id, status);
    if (counts === null) return;
    const failsChord = status.state !== 'succeeded' && membership.onError === 'fail';
    if (!failsChord && counts.completed < counts.expected) return;
    if (!(await this.claim(membership.id, arrival))) return;
    if (failsChord) {
      await this.fail(membership, membership.index, counts.expected, status, arrival);
      await this.fired(membership.id);
      return;
    }
    const group = await this.stem.backend.getGroup(membership.id);
    const members = group?.results ?? [];
    // A member that failed may have been recorded before this arrival yet claim after it (workers
    // finish members concurrently): the group, not the arriving member, says whether the chord fails.
    const failed = membership.onError === 'fail' ? members.findIndex((member) => member != null && member.state !== 'succeeded') : -1;
    if (failed >= 0) {
      await this.fail(membership, failed, counts.expected, members[failed]!, arrival);
      await this.fired(membership.id);
      return;
    }
    const failures: ChordFailure[] = [];
    const results = members.map((member, index) => {
      if (member?.state === 'succeeded') return member.result ?? null;
      if (member !== null)
        failures.push({ index, id: member.id, name: member.name ?? '', state: member.state, error: briefError(member.error) });
      return null;
    });
    const traceparents = members.flatMap((member) => {
      const traceparent = member?.meta?.[TRACEPARENT_META];
      return typeof traceparent === 'string' ? [traceparent] : [];
    });
    await this.fire(membership.id, membership.callback, results, failures, traceparents, arrival);
    await this.fired(membership.id);
  }

  /**
   * Claims the chord: true for exactly one caller per chord id, and again for one caller after a
   * claimer died unfired. A caller that loses to a live, unfired claim waits (its own delivery is
   * kept leased by the worker meanwhile) until the holder fires or its lease ends, and claims again;
   * should neither happen within a few leases, it throws and its delivery is redelivered later.
   */
  private async claim(chordId: string, arrival: Arrival): Promise<boolean> {
    // A token per call: a claim written twice by a command the transport retried is still ours.
    const claimer = `${arrival.workerId}/${uuidv7()}`;
    const options: ChordClaimOptions = { ttlMs: this.stem.settings.resultTtlMs, leaseMs: arrival.leaseMs, claimer };
    const started = Date.now();
    let deadline: number | undefined;
    let pause = CLAIM_POLL_FIRST_MS;
    for (;;) {
      const claim = await this.stem.backend.claimChord(chordId, options);
      if (claim.won) {
        if (claim.takenOverFrom !== undefined) {
          const from = claim.takenOverFrom === '' ? 'another worker' : claim.takenOverFrom;
          process.emitWarning(
            `canvas: chord ${chordId}: took over the claim of ${from}, whose lease ended before it fired the callback; firing it now`,
            'StemCanvasWarning',
          );
        }
        return true;
      }
      if (claim.claimer === claimer) return true;
      const { leaseEndsAt } = claim;
      if (claim.fired || leaseEndsAt === undefined) return false;
      const now = Date.now();
      // The store's clock dates the lease; a bounded wait keeps a skewed clock from holding this member forever.
      const until = (deadline ??= now + Math.min(Math.max(leaseEndsAt - now, 0), HOLDER_LEASES_WAITED * arrival.leaseMs) + arrival.leaseMs);
      if (now >= until) throw new ChordClaimPendingError(chordId, claim.claimer ?? '', now - started);
      await new Promise((resolve) => setTimeout(resolve, Math.max(CLAIM_POLL_FIRST_MS, Math.min(pause, leaseEndsAt - now, until - now))));
      pause = Math.min(pause * 2, CLAIM_POLL_CAP_MS);
    }
  }

  /** Marks the claim fired. Failing that is only a warning: the claim stays open to a takeover, which a later arrival would make. */
  private async fired(chordId: string): Promise<void> {
    try {
      await this.stem.backend.chordFired(chordId, { ttlMs: this.stem.settings.resultTtlMs });
    } catch (error) {
      process.emitWarning(
        `canvas: chord ${chordId}: its callback was fired but the claim could not be marked so (${(error as Error).message}); a ` +
          `redelivered member could fire it again`,
        'StemCanvasWarning',
      );
    }
  }

  /**
   * Enqueues the callback under the chord id with the ordered results. An enqueue this worker
   * refuses (e.g. the callback task is not registered here) fails the chord instead: the claim is
   * this worker's (and is marked fired next), so no other worker would fire it.
   */
  private async fire(
    chordId: string,
    callback: SignatureSpec,
    results: unknown[],
    failures: ChordFailure[],
    traceparents: string[],
    arrival: Arrival,
  ): Promise<void> {
    const request = callbackRequest(chordId, callback, results, failures, traceparents);
    try {
      await this.stem.enqueue(request.task, request.args, request.options);
    } catch (error) {
      const handoff = new CanvasHandoffError(`chord ${chordId}: its callback ${callback.name}`, toTaskError(error));
      process.emitWarning(`canvas: ${handoff.message}`, 'StemCanvasWarning');
      await this.writeFailed(chordId, callback, storedError(handoff), {}, arrival);
    }
  }

  private async fail(membership: ChordMembership, index: number, total: number, member: TaskStatus, arrival: Arrival): Promise<void> {
    const error = new ChordMemberFailedError(
      membership.id,
      index,
      total,
      { id: member.id, name: member.name ?? '' },
      membership.callback.name,
      briefError(member.error),
    );
    await this.writeFailed(
      membership.id,
      membership.callback,
      storedError(error),
      { failedMember: index, failedTaskId: member.id },
      arrival,
    );
  }

  private async writeFailed(
    chordId: string,
    callback: SignatureSpec,
    error: TaskStatus['error'],
    detail: Record<string, unknown>,
    arrival: Arrival,
  ): Promise<void> {
    const status: TaskStatus = {
      id: chordId,
      state: 'failed',
      name: callback.name,
      attempt: 0,
      updatedAt: Date.now(),
      error,
      meta: { [CANVAS_META.chord]: detail },
    };
    if (callback.options.queue !== undefined) status.queue = callback.options.queue;
    await this.stem.backend.set([status], { ttlMs: this.stem.settings.resultTtlMs });
    // A chord that is a chain step: its callback will not run to carry the chain on, so end the chain here.
    const link = callback.options.meta?.[CANVAS_META.chain] as ChainLink | undefined;
    if (link !== undefined) await this.chainStepEnded(link, status, arrival);
  }

  /** Records in the group; null (with a warning) when the group expired or never knew this member. */
  private async record(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number } | null> {
    let counts: { completed: number; expected: number };
    try {
      counts = await this.stem.backend.recordGroupResult(groupId, status);
    } catch (error) {
      // Redelivering the task would not bring an expired group back; say so and let it finish.
      if (error instanceof StemError && (error.code === 'unknown-group' || error.code === 'not-a-group-member')) {
        process.emitWarning(`canvas: task ${status.id} could not record in group ${groupId}: ${error.message}`, 'StemCanvasWarning');
        return null;
      }
      throw error;
    }
    if (counts.expected === 0) {
      process.emitWarning(
        `canvas: task ${status.id} could not record in group ${groupId}: the group is unknown (expired, or never initialised)`,
        'StemCanvasWarning',
      );
      return null;
    }
    return counts;
  }
}
