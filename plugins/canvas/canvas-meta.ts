import type { TaskContext } from '../../sdk/task.js';
import type { ChordErrorPolicy, StepSpec } from './compose.js';
import type { SignatureSpec } from './signature.js';

/** Envelope meta keys the canvas writes; all under `stem.` so other plugins can read them. */
export const CANVAS_META = {
  /** On a chain step: its {@link ChainLink}. */
  chain: 'stem.chain',
  /** On a group member: the group id. */
  group: 'stem.group',
  /** On a chord member: its {@link ChordMembership}. */
  chord: 'stem.chord',
  /** On a chain step after the first, and on a chord callback: what the parent produced. */
  parentResult: 'stem.parentResult',
  /** On a chord callback run with `onError: 'continue'`: the members that did not succeed. */
  chordFailures: 'stem.chordFailures',
} as const;

/** One step of a chain as the chain's status record lists it. */
export interface ChainStepRef {
  /** The step's task id (fixed when the chain is created). */
  id: string;
  /** The step's task name. */
  name: string;
}

/** What a chain step carries: where it stands and the steps still to run. */
export interface ChainLink {
  /** The chain id (its status record). */
  id: string;
  /** This step's position, from 0. */
  index: number;
  /** Every step of the chain, in order. */
  steps: ChainStepRef[];
  /** The steps after this one (tasks or chords), sent one by one by the worker that finishes the previous step. */
  rest: StepSpec[];
  /** When the chain is a group or chord member: where its end is recorded. */
  memberOf?: MemberOf;
}

/** Where a nested chain reports its end: the group it belongs to, or its chord membership. */
export type MemberOf = { group: string } | { chord: ChordMembership };

/** What a chord member carries: enough for the last member's worker to fire the callback. */
export interface ChordMembership {
  /** The chord id: also the body's group id and the callback's task id. */
  id: string;
  /** This member's position in the body, from 0. */
  index: number;
  /** The callback, enqueued with the chord id as its task id. */
  callback: SignatureSpec;
  /** `fail`: a failed member fails the chord; `continue`: the callback gets partial results. */
  onError: ChordErrorPolicy;
}

/** A chord member that did not succeed, as passed to a callback run with `onError: 'continue'`. */
export interface ChordFailure {
  /** The member's position in the body. */
  index: number;
  /** Its task id. */
  id: string;
  /** Its task name. */
  name: string;
  /** failed or cancelled. */
  state: string;
  /** Its error type and message. */
  error: { type: string; message: string };
}

/**
 * The result of the previous chain step (or the chord body's ordered results, for a callback),
 * or undefined for a first step or an immutable signature.
 */
export function parentResult<T = unknown>(ctx: Pick<TaskContext, 'meta'>): T | undefined {
  return ctx.meta[CANVAS_META.parentResult] as T | undefined;
}

/** The chord members that did not succeed, for a callback run with `onError: 'continue'` (empty otherwise). */
export function chordFailures(ctx: Pick<TaskContext, 'meta'>): ChordFailure[] {
  return (ctx.meta[CANVAS_META.chordFailures] as ChordFailure[] | undefined) ?? [];
}
