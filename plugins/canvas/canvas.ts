import { UsageError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { Stem } from '../../sdk/kernel.js';
import type { EnqueueRequest } from '../../sdk/producer.js';
import { CANVAS_META, type ChainLink, type ChordErrorPolicy, type ChordMembership } from './canvas-meta.js';
import { chainRecord, chainStepRequest } from './chain-handoff.js';
import { callbackRequest } from './chord-barrier.js';
import { readGroupResult, type GroupResult } from './group-result.js';
import { assertSignature, type Signature } from './signature.js';

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

/** What `chord()` takes. */
export interface ChordSpec {
  /** The members, run in parallel. */
  body: readonly Signature<any, any>[];
  /** Runs once every member is terminal, with the members' results in order. */
  callback: Signature<any, any>;
  /** `fail` (default): a failed member fails the chord; `continue`: the callback runs with null for it. */
  onError?: ChordErrorPolicy;
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

  /** Enqueues `members` to run in parallel as one group; read it back with `groupResult(groupId)`. */
  async group(members: readonly Signature<any, any>[], options: GroupOptions = {}): Promise<EnqueuedGroup> {
    const taskIds = this.memberIds(members, 'group');
    const groupId = options.groupId ?? uuidv7();
    if (typeof groupId !== 'string' || groupId.length === 0) throw new UsageError('group(): option "groupId" must be a non-empty string');
    // The group must exist before any member can finish and record in it.
    await this.stem.backend.initGroup(groupId, taskIds, { ttlMs: this.stem.settings.resultTtlMs });
    if (members.length > 0) {
      await this.stem.enqueueMany(members.map((member, i) => request(member, taskIds[i]!, { [CANVAS_META.group]: groupId })));
    }
    return { groupId, taskIds };
  }

  /**
   * Enqueues a chord and returns its id, which is also the callback's task id (so
   * `stem.handle(chordId).result()` is the callback's result) and the body's group id.
   */
  async chord(spec: ChordSpec): Promise<string> {
    if (typeof spec !== 'object' || spec === null) throw new UsageError('chord(): pass { body: [task(...), …], callback: task(...) }');
    const { body, callback, onError = 'fail' } = spec;
    assertSignature(callback, 'chord(): option "callback"');
    if (onError !== 'fail' && onError !== 'continue') {
      throw new UsageError(`chord(): option "onError" is ${JSON.stringify(onError)}; use 'fail' (a failed member fails the chord) or 'continue' (the callback gets partial results)`);
    }
    const taskIds = this.memberIds(body, 'chord(): option "body"');
    const chordId = callback.options.id ?? uuidv7();
    if (taskIds.includes(chordId)) throw new UsageError(`chord(): the callback's id ${chordId} is also a member's id; give them different ids`);
    const callbackSpec = callback.toSpec(chordId, 'chord.callback');
    const ttl = { ttlMs: this.stem.settings.resultTtlMs };
    const backend = this.stem.backend;
    const pending = { id: chordId, state: 'pending' as const, name: callback.name, attempt: 0, updatedAt: Date.now(), meta: { [CANVAS_META.chord]: { groupId: chordId, expected: taskIds.length, onError } } };
    await Promise.all([backend.initGroup(chordId, taskIds, ttl), backend.set([callback.options.queue === undefined ? pending : { ...pending, queue: callback.options.queue }], ttl)]);
    if (body.length === 0) {
      // No member will ever reach the barrier: the producer fires the callback itself.
      const fire = callbackRequest(chordId, callbackSpec, [], []);
      await this.stem.enqueueMany([{ ...fire, task: callback.definition ?? fire.task }]);
      return chordId;
    }
    await this.stem.enqueueMany(
      body.map((member, index) => {
        const membership: ChordMembership = { id: chordId, index, callback: callbackSpec, onError };
        return request(member, taskIds[index]!, { [CANVAS_META.chord]: membership });
      }),
    );
    return chordId;
  }

  /**
   * Enqueues the first step of a chain and returns the chain id, a status record that is
   * `running` until the last step succeeds (its result) or a step fails or is cancelled (naming it).
   */
  async chain(steps: readonly Signature<any, any>[], options: ChainOptions = {}): Promise<string> {
    const ids = this.memberIds(steps, 'chain()');
    const [first] = steps;
    if (first === undefined) throw new UsageError('chain(): pass at least one step, e.g. chain([task("a"), task("b")])');
    const chainId = options.id ?? uuidv7();
    if (ids.includes(chainId)) throw new UsageError(`chain(): the chain id ${chainId} is also a step's id; give them different ids`);
    const link: Pick<ChainLink, 'id' | 'steps'> = { id: chainId, steps: steps.map((step, i) => ({ id: ids[i]!, name: step.name })) };
    // Every later step is checked for JSON now, not on a worker halfway through the chain.
    const specs = steps.map((step, i) => step.toSpec(ids[i]!, `chain[${i}]`));
    await this.stem.backend.set([chainRecord(link, 'running', { progress: { step: 0, of: steps.length, taskId: ids[0] } })], { ttlMs: this.stem.settings.resultTtlMs });
    const firstRequest = chainStepRequest(link, 0, specs[0]!, specs.slice(1), undefined);
    await this.stem.enqueueMany([{ ...firstRequest, task: first.definition ?? firstRequest.task }]);
    return chainId;
  }

  /** A group's (or a chord body's) members: states, completed count and results in order; null for an unknown id. */
  groupResult<Result = unknown>(groupId: string): Promise<GroupResult<Result> | null> {
    return readGroupResult<Result>(this.stem.backend, groupId);
  }

  /** Each member's task id (its own `id` option, else a new one), refusing non-signatures and repeated ids. */
  private memberIds(members: readonly Signature<any, any>[], where: string): string[] {
    if (!Array.isArray(members)) throw new UsageError(`${where}: expected an array of task(...) signatures`);
    const ids = members.map((member, i) => {
      assertSignature(member, `${where}[${i}]`);
      return member.options.id ?? uuidv7();
    });
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new UsageError(`${where}: task id ${id} is given twice; each member needs its own id`);
      seen.add(id);
    }
    return ids;
  }
}

/** The enqueue of one member under its fixed id, with canvas meta added to its own. */
function request(member: Signature<any, any>, id: string, meta: Record<string, unknown>): EnqueueRequest {
  return { task: member.definition ?? member.name, args: member.args, options: { ...member.options, id, meta: { ...member.options.meta, ...meta } } };
}
