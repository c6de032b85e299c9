import { assertValidName } from '../../sdk/envelope.js';
import { UsageError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { TaskDefinition } from '../../sdk/task.js';
import { assertSignature, Signature, type SignatureSpec } from './signature.js';

/** A group or chord member: a task, or a chain (the member ends when the chain does, with its last result). */
export type Member = Signature<any, any> | ChainSignature;
/** A chain step: a task, or a chord (the step ends when the chord's callback does, with its result). */
export type Step = Signature<any, any> | ChordSignature;

/** What `onError` a chord was created with. */
export type ChordErrorPolicy = 'fail' | 'continue';

/** What `chord()` takes. */
export interface ChordSpec {
  /** The members, run in parallel: tasks or chains. */
  body: readonly Member[];
  /** Runs once every member is terminal, with the members' results in order. */
  callback: Signature<any, any>;
  /** `fail` (default): a failed member fails the chord; `continue`: the callback gets partial results. */
  onError?: ChordErrorPolicy;
}

/** A chain not sent yet, to put in a group or chord body: `chain([task(a), task(b)])`. */
export class ChainSignature {
  constructor(
    /** The steps, in order. */
    readonly steps: readonly Step[],
    /** The chain id (default: a new UUIDv7 when it is sent). */
    readonly id: string | undefined,
  ) {}
}

/** A chord not sent yet, to put in a chain as one step: `chord({ body, callback })`. */
export class ChordSignature {
  constructor(
    /** The members. */
    readonly body: readonly Member[],
    /** The callback; its id (if given) is the chord id. */
    readonly callback: Signature<any, any>,
    /** What a failed member does. */
    readonly onError: ChordErrorPolicy,
  ) {}
}

/** Makes a chain to nest in a group or chord body (`canvasOf(stem).chain()` sends one on its own). */
export function chain(steps: readonly Step[], options: { id?: string } = {}): ChainSignature {
  if (!Array.isArray(steps)) throw new UsageError('chain(): expected an array of task(...) signatures');
  if (steps.length === 0) throw new UsageError('chain(): pass at least one step, e.g. chain([task("a"), task("b")])');
  steps.forEach((step, i) => {
    if (!(step instanceof ChordSignature)) assertSignature(step, `chain()[${i}]`);
  });
  return new ChainSignature(steps, options.id);
}

/** Makes a chord to nest as a chain step (`canvasOf(stem).chord()` sends one on its own). */
export function chord(spec: ChordSpec): ChordSignature {
  if (typeof spec !== 'object' || spec === null) throw new UsageError('chord(): pass { body: [task(...), …], callback: task(...) }');
  const { body, callback, onError = 'fail' } = spec;
  assertSignature(callback, 'chord(): option "callback"');
  if (onError !== 'fail' && onError !== 'continue') {
    throw new UsageError(
      `chord(): option "onError" is ${JSON.stringify(onError)}; use 'fail' (a failed member fails the chord) or 'continue' (the ` +
        `callback gets partial results)`,
    );
  }
  assertMembers(body, 'chord(): option "body"');
  return new ChordSignature(body, callback, onError);
}

/** Throws unless `members` is an array of task or chain signatures. */
export function assertMembers(members: readonly Member[], where: string): void {
  if (!Array.isArray(members)) throw new UsageError(`${where}: expected an array of task(...) signatures`);
  members.forEach((member, i) => {
    if (!(member instanceof ChainSignature)) assertSignature(member, `${where}[${i}]`);
  });
}

/** A chain as carried in meta: its id and steps. */
export interface ChainSpec {
  kind: 'chain';
  /** The chain id (its status record). */
  id: string;
  /** The steps, ids fixed. */
  steps: StepSpec[];
}

/** A chord as carried in meta (as a chain step). */
export interface ChordStepSpec {
  kind: 'chord';
  /** The chord id: the callback's task id and the body's group id. */
  id: string;
  /** The members, ids fixed. */
  body: MemberSpec[];
  /** The callback, under the chord id. */
  callback: SignatureSpec;
  /** What a failed member does. */
  onError: ChordErrorPolicy;
}

/** A group or chord member in meta. */
export type MemberSpec = SignatureSpec | ChainSpec;
/** A chain step in meta. */
export type StepSpec = SignatureSpec | ChordStepSpec;

/** True for a chain member spec. */
export function isChainSpec(spec: MemberSpec): spec is ChainSpec {
  return (spec as { kind?: string }).kind === 'chain';
}

/** True for a chord step spec (a plain task spec has no `kind`). */
export function isChordSpec(spec: StepSpec): spec is ChordStepSpec {
  return (spec as { kind?: string }).kind === 'chord';
}

/** The id a member or step spec is known by: its task id, chain id or chord id. */
export function specId(spec: MemberSpec | StepSpec): string {
  return 'kind' in spec ? spec.id : spec.options.id;
}

/**
 * Turns signatures into JSON specs with every id fixed, checking JSON-ness and repeated ids; the
 * producer-side definitions are collected by id in `definitions` so their defaults apply.
 */
export class SpecBuilder {
  /** Task definitions known to the producer, by task id. */
  readonly definitions = new Map<string, TaskDefinition<any, any>>();

  /** Members of a group or chord body. */
  members(members: readonly Member[], where: string): MemberSpec[] {
    const ids = uniqueIds(
      members.map((m) => (m instanceof ChainSignature ? m.id : m.options.id)),
      where,
    );
    return members.map((m, i) =>
      m instanceof ChainSignature ? this.chain(m, ids[i]!, `${where}[${i}]`) : this.task(m, ids[i]!, `${where}[${i}]`),
    );
  }

  /** A chain with id `id`. */
  chain(sig: ChainSignature, id: string, where: string): ChainSpec {
    // Checked here, before the launch writes any record under it (Postgres text refuses NUL).
    assertValidName('id', id);
    const ids = uniqueIds(
      sig.steps.map((s) => (s instanceof ChordSignature ? s.callback.options.id : s.options.id)),
      where,
    );
    if (ids.includes(id)) throw new UsageError(`${where}: the chain id ${id} is also a step's id; give them different ids`);
    const steps = sig.steps.map((s, i) =>
      s instanceof ChordSignature ? this.chord(s, ids[i]!, `${where}[${i}]`) : this.task(s, ids[i]!, `${where}[${i}]`),
    );
    return { kind: 'chain', id, steps };
  }

  /** A chord with id `id`. */
  chord(sig: ChordSignature, id: string, where: string): ChordStepSpec {
    const body = this.members(sig.body, `${where}.body`);
    if (body.some((m) => specId(m) === id))
      throw new UsageError(`${where}: the callback's id ${id} is also a member's id; give them different ids`);
    return { kind: 'chord', id, body, callback: this.task(sig.callback, id, `${where}.callback`), onError: sig.onError };
  }

  /** One task under `id`. */
  task(sig: Signature<any, any>, id: string, where: string): SignatureSpec {
    assertValidName('id', id);
    if (sig.definition !== undefined) this.definitions.set(id, sig.definition);
    return sig.toSpec(id, where);
  }
}

/** Each given id, or a new one, refusing repeats. */
function uniqueIds(given: Array<string | undefined>, where: string): string[] {
  const ids = given.map((id) => id ?? uuidv7());
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new UsageError(`${where}: task id ${id} is given twice; each member needs its own id`);
    seen.add(id);
  }
  return ids;
}
