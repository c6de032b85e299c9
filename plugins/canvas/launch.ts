import type { TaskState, TaskStatus } from '../../sdk/contracts/result-backend.js';
import type { Stem } from '../../sdk/kernel.js';
import type { EnqueueRequest } from '../../sdk/producer.js';
import type { TaskDefinition } from '../../sdk/task.js';
import { CANVAS_META, type ChainLink, type ChainStepRef, type ChordMembership, type MemberOf } from './canvas-meta.js';
import { callbackRequest } from './chord-barrier.js';
import { isChainSpec, isChordSpec, specId, type ChainSpec, type ChordStepSpec, type MemberSpec, type StepSpec } from './compose.js';
import { withParent, type SignatureSpec } from './signature.js';

/** The task name a chain's status record carries. */
export const CHAIN_RECORD_NAME = 'stem.chain';

/** The chain's status record: `running` while steps remain, then the last step's result or which step stopped it. */
export function chainRecord(
  link: Pick<ChainLink, 'id' | 'steps'>,
  state: TaskState,
  extra: Partial<TaskStatus> = {},
  detail: Record<string, unknown> = {},
): TaskStatus {
  return {
    id: link.id,
    state,
    name: CHAIN_RECORD_NAME,
    attempt: 0,
    updatedAt: Date.now(),
    ...extra,
    meta: { [CANVAS_META.chain]: { steps: link.steps, ...detail } },
  };
}

/** What a step, member or callback after another gets: the parent's result. */
export interface Parent {
  result: unknown;
}

/**
 * Everything one canvas move sends, gathered first and then sent in order: groups and status
 * records are written before any task is enqueued, so no member can finish before its group exists.
 * Used by the producer (`group`, `chord`, `chain`) and by workers (the next chain step).
 */
export class Launch {
  private readonly groups: Array<[string, string[]]> = [];
  private readonly statuses: TaskStatus[] = [];
  private readonly requests: EnqueueRequest[] = [];

  constructor(
    private readonly stem: Stem,
    private readonly definitions: ReadonlyMap<string, TaskDefinition<any, any>> = new Map(),
  ) {}

  /** A group: its record and its members. */
  group(groupId: string, members: readonly MemberSpec[]): void {
    this.groups.push([groupId, members.map(specId)]);
    for (const member of members) this.member(member, { group: groupId }, undefined);
  }

  /** A group or chord member, a task or a chain, that reports its end to `memberOf`. */
  member(spec: MemberSpec, memberOf: MemberOf, parent: Parent | undefined): void {
    if (isChainSpec(spec)) {
      this.chain(spec, memberOf, parent);
      return;
    }
    this.task(spec, 'group' in memberOf ? { [CANVAS_META.group]: memberOf.group } : { [CANVAS_META.chord]: memberOf.chord }, parent);
  }

  /** A chain: its `running` record, then its first step. */
  chain(spec: ChainSpec, memberOf: MemberOf | undefined, parent: Parent | undefined): void {
    const link: Omit<ChainLink, 'index' | 'rest'> = { id: spec.id, steps: spec.steps.map(stepRef) };
    if (memberOf !== undefined) link.memberOf = memberOf;
    const [first, ...rest] = spec.steps;
    this.statuses.push(chainRecord(link, 'running', { progress: { step: 0, of: spec.steps.length, taskId: specId(first!) } }));
    this.step(link, 0, first!, rest, parent);
  }

  /** Chain step `index` (a task, or a chord whose callback carries the chain on), with the steps after it. */
  step(link: Omit<ChainLink, 'index' | 'rest'>, index: number, spec: StepSpec, rest: StepSpec[], parent: Parent | undefined): void {
    const next: ChainLink = { ...link, index, rest };
    if (isChordSpec(spec)) this.chord(spec, { [CANVAS_META.chain]: next }, parent);
    else this.task(spec, { [CANVAS_META.chain]: next }, parent);
  }

  /**
   * A chord: its body group, its `pending` record under the chord id, and its members (each given
   * the parent result, when the chord is a chain step). `callbackMeta` rides on the callback.
   */
  chord(spec: ChordStepSpec, callbackMeta: Record<string, unknown>, parent: Parent | undefined): void {
    const callback: SignatureSpec = {
      ...spec.callback,
      options: { ...spec.callback.options, meta: { ...spec.callback.options.meta, ...callbackMeta } },
    };
    this.groups.push([spec.id, spec.body.map(specId)]);
    const pending: TaskStatus = {
      id: spec.id,
      state: 'pending',
      name: callback.name,
      attempt: 0,
      updatedAt: Date.now(),
      meta: { [CANVAS_META.chord]: { groupId: spec.id, expected: spec.body.length, onError: spec.onError } },
    };
    if (callback.options.queue !== undefined) pending.queue = callback.options.queue;
    this.statuses.push(pending);
    if (spec.body.length === 0) {
      // No member will ever reach the barrier: whoever sends the chord fires the callback.
      const fire = callbackRequest(spec.id, callback, [], []);
      this.requests.push({ ...fire, task: this.definitions.get(spec.id) ?? fire.task });
      return;
    }
    spec.body.forEach((member, index) => {
      const membership: ChordMembership = { id: spec.id, index, callback, onError: spec.onError };
      this.member(member, { chord: membership }, parent);
    });
  }

  /** One task under its fixed id, with canvas meta added to its own and the parent merged in (unless immutable). */
  private task(spec: SignatureSpec, meta: Record<string, unknown>, parent: Parent | undefined): void {
    const ownMeta: Record<string, unknown> = { ...spec.options.meta, ...meta };
    let args = spec.args;
    if (parent !== undefined && !spec.immutable) {
      ownMeta[CANVAS_META.parentResult] = parent.result;
      args = withParent(spec.args, parent.result);
    }
    this.requests.push({ task: this.definitions.get(spec.options.id) ?? spec.name, args, options: { ...spec.options, meta: ownMeta } });
  }

  /** Writes the groups and records, then enqueues every task. */
  async run(): Promise<void> {
    const backend = this.stem.backend;
    const ttl = { ttlMs: this.stem.settings.resultTtlMs };
    await Promise.all([
      ...this.groups.map(([id, members]) => backend.initGroup(id, members, ttl)),
      this.statuses.length > 0 ? backend.set(this.statuses, ttl) : undefined,
    ]);
    if (this.requests.length > 0) await this.stem.enqueueMany(this.requests);
  }
}

/** How a chain record lists a step: a task by its id and name, a chord by its id and callback name. */
function stepRef(spec: StepSpec): ChainStepRef {
  return isChordSpec(spec) ? { id: spec.id, name: spec.callback.name } : { id: spec.options.id, name: spec.name };
}
