import { ConfigError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { Canvas } from './canvas.js';
import { CANVAS_META, type ChainLink, type ChordMembership } from './canvas-meta.js';
import { ChainHandoff } from './chain-handoff.js';
import { ChordBarrier } from './chord-barrier.js';
import { terminalStatus, type TerminalOutcome } from './canvas-status.js';

export type { Canvas, ChainOptions, EnqueuedGroup, GroupOptions } from './canvas.js';
export {
  chain,
  chord,
  type ChordErrorPolicy,
  type ChainSignature,
  type ChordSignature,
  type ChordSpec,
  type Member,
  type Step,
} from './compose.js';
export { CANVAS_META, chordFailures, parentResult, type ChordFailure } from './canvas-meta.js';
export { readGroupResult, type GroupResult } from './group-result.js';
export { task, type Signature, type SignatureOptions } from './signature.js';

const canvases = new WeakMap<Stem, Canvas>();

/**
 * The canvas plugin: chains, groups and chords. Add `canvas()` to the plugins of every process
 * that produces canvas work or runs its tasks (workers advance chains and close chord barriers in
 * the result phase); producers then compose with `canvasOf(stem)`.
 */
export function canvas(): StemPlugin {
  let applied: Stem | undefined;
  return {
    name: 'canvas',
    apply(stem) {
      // Each needs the other: a nested chain ends in a chord, a chord in a chain moves the chain on.
      const chords: ChordBarrier = new ChordBarrier(stem, (link, status, arrival) => chains.advance(link, status, arrival));
      const chains: ChainHandoff = new ChainHandoff(stem, (memberOf, status, arrival) =>
        'group' in memberOf ? chords.recordGroupMember(memberOf.group, status) : chords.arrive(memberOf.chord, status, arrival),
      );
      stem.hooks.result.tapPromise('canvas', async (outcome) => {
        // Retries are not terminal: the member or step has another attempt coming.
        if (outcome.state === 'retried') return;
        const terminal = terminalStatus(outcome as TerminalOutcome);
        const meta = outcome.envelope.meta;
        const chain = meta[CANVAS_META.chain] as ChainLink | undefined;
        const groupId = meta[CANVAS_META.group] as string | undefined;
        const chord = meta[CANVAS_META.chord] as ChordMembership | undefined;
        const arrival = { workerId: outcome.worker.id, leaseMs: outcome.envelope.visibilityTimeoutMs };
        if (chain !== undefined) await chains.advance(chain, terminal, arrival);
        if (groupId !== undefined) await chords.recordGroupMember(groupId, terminal);
        if (chord !== undefined) await chords.arrive(chord, terminal, arrival);
      });
      canvases.set(stem, new Canvas(stem));
      applied = stem;
    },
    async close() {
      if (applied !== undefined) canvases.delete(applied);
      applied = undefined;
    },
  };
}

/** The canvas API of a Stem created with `canvas()` in its plugins; throws ConfigError otherwise. */
export function canvasOf(stem: Stem): Canvas {
  const found = canvases.get(stem);
  if (found === undefined) {
    throw new ConfigError(
      'canvasOf(stem): this Stem was created without the canvas plugin; add canvas() to its plugins (import { canvas } from ' +
        '"stem/plugins/canvas"), in workers too',
    );
  }
  return found;
}
