import { nameProblem } from '../../sdk/envelope.js';
import { InvalidNameError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertMembers, chain, chord, SpecBuilder, type ChordSpec, type Member, type Step } from './compose.js';
import { readGroupResult, type GroupResult } from './group-result.js';
import { Launch } from './launch.js';

/** What `group()` returns: the group id and its members' task ids, in order. */
export interface EnqueuedGroup {
  /** The group id: pass it to `groupResult()`. */
  groupId: string;
  /** Member task ids in the order given; `stem.handle(id)` awaits one. */
  taskIds: string[];
}

/** Options of `group()`. */
export interface GroupOptions {
  /** The group id (default: a new UUIDv7). Reusing an id starts that group over. */
  groupId?: string;
}

/** Options of `chain()`. */
export interface ChainOptions {
  /** The chain id (default: a new UUIDv7). */
  id?: string;
}

/**
 * Composes tasks: chains (each step gets the previous result), groups (parallel, results in
 * order) and chords (a group plus a callback that runs exactly once). Get it with `canvasOf(stem)`.
 * Every id it returns is readable from any process through `stem.status(id)` / `stem.handle(id)`.
 */
export class Canvas {
  constructor(private readonly stem: Stem) {}

  /** Enqueues `members` (tasks, or chains) to run in parallel as one group; read it back with `groupResult(groupId)`. */
  async group(members: readonly Member[], options: GroupOptions = {}): Promise<EnqueuedGroup> {
    assertMembers(members, 'group');
    const groupId = options.groupId ?? uuidv7();
    const problem = nameProblem(groupId);
    if (problem !== undefined) {
      throw new InvalidNameError('group id', problem, 'give option "groupId" 1 to 256 bytes of printable characters, or leave it out');
    }
    const specs = new SpecBuilder();
    const memberSpecs = specs.members(members, 'group');
    const launch = new Launch(this.stem, specs.definitions);
    launch.group(groupId, memberSpecs);
    await launch.run();
    return { groupId, taskIds: memberSpecs.map((member) => ('kind' in member ? member.id : member.options.id)) };
  }

  /**
   * Enqueues a chord and returns its id, which is also the callback's task id (so
   * `stem.handle(chordId).result()` is the callback's result) and the body's group id. Body
   * members may be chains.
   */
  async chord(spec: ChordSpec): Promise<string> {
    const signature = chord(spec);
    const specs = new SpecBuilder();
    const chordSpec = specs.chord(signature, signature.callback.options.id ?? uuidv7(), 'chord');
    const launch = new Launch(this.stem, specs.definitions);
    launch.chord(chordSpec, {}, undefined);
    await launch.run();
    return chordSpec.id;
  }

  /**
   * Enqueues the first step of a chain and returns the chain id, a status record that is
   * `running` until the last step succeeds (its result) or a step fails or is cancelled (naming it).
   * A step may be a chord (`chord({ body, callback })`): its callback's result feeds the next step.
   */
  async chain(steps: readonly Step[], options: ChainOptions = {}): Promise<string> {
    const signature = chain(steps, options);
    const specs = new SpecBuilder();
    // Every later step is checked for JSON now, not on a worker halfway through the chain.
    const chainSpec = specs.chain(signature, options.id ?? uuidv7(), 'chain');
    const launch = new Launch(this.stem, specs.definitions);
    launch.chain(chainSpec, undefined, undefined);
    await launch.run();
    return chainSpec.id;
  }

  /** A group's (or a chord body's) members: states, completed count and results in order; null for an unknown id. */
  groupResult<Result = unknown>(groupId: string): Promise<GroupResult<Result> | null> {
    return readGroupResult<Result>(this.stem.backend, groupId);
  }
}
