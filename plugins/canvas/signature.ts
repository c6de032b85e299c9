import { UsageError } from '../../sdk/errors.js';
import { assertJsonSerialisable } from '../../sdk/envelope.js';
import type { EnqueueOptions, TaskDefinition } from '../../sdk/task.js';

/** Enqueue options of one signature, plus `immutable` to ignore the parent's result. */
export interface SignatureOptions extends EnqueueOptions {
  /** When true, the task gets neither `parent` in its args nor `stem.parentResult` in its meta. */
  immutable?: boolean;
}

/** A signature as carried in envelope meta to the worker that enqueues it later: plain JSON. */
export interface SignatureSpec {
  /** The task name. */
  name: string;
  /** Its own arguments, before the parent's result is merged in. */
  args: unknown;
  /** Enqueue options (JSON-safe), including the pre-assigned `id`. */
  options: EnqueueOptions & { id: string };
  /** Whether the parent's result is withheld. */
  immutable: boolean;
}

/**
 * One task invocation to compose into a chain, group or chord: a task, its arguments and enqueue
 * options. Make it with {@link task}; the type parameters carry the task's Args and Result.
 */
export class Signature<Args = unknown, Result = unknown> {
  /** The task name. */
  readonly name: string;
  /** The definition, when the signature was made from one (the producer then applies its defaults). */
  readonly definition: TaskDefinition<Args, Result> | undefined;
  /** The arguments. */
  readonly args: Args;
  /** Enqueue options, without `immutable`. */
  readonly options: EnqueueOptions;
  /** True when the parent's result is not handed to this task. */
  readonly isImmutable: boolean;

  constructor(task: TaskDefinition<Args, Result> | string, args: Args, options: SignatureOptions = {}) {
    if (typeof task === 'string') {
      if (task.length === 0)
        throw new UsageError('task(): the task name is empty; pass a name such as "media.resize" or a defineTask() definition');
      this.name = task;
      this.definition = undefined;
    } else if (typeof task === 'object' && task !== null && typeof task.name === 'string') {
      this.name = task.name;
      this.definition = task;
    } else {
      throw new UsageError(`task(): expected a task name or a defineTask() definition, got ${JSON.stringify(task)}`);
    }
    const { immutable, ...enqueueOptions } = options;
    this.args = args;
    this.options = enqueueOptions;
    this.isImmutable = immutable === true;
  }

  /** A copy that ignores its parent's result (Celery's `si()`). */
  immutable(): Signature<Args, Result> {
    return new Signature<Args, Result>(this.definition ?? this.name, this.args, { ...this.options, immutable: true });
  }

  /** The JSON form carried in meta, with its task id fixed now; `where` names it in errors (`chain[2]`). */
  toSpec(id: string, where: string): SignatureSpec {
    assertJsonSerialisable(this.args, `${where}.args`);
    const options = { ...this.options, id };
    assertJsonSerialisable(options, `${where}.options`);
    // The producer applies a definition's defaults only when it knows the task; a worker always does.
    return { name: this.name, args: this.args, options, immutable: this.isImmutable };
  }
}

/**
 * Makes a signature: `task(resize, { file: 'hero.png' })` (typed) or `task('media.resize', args)`.
 * `options` are enqueue options plus `immutable`.
 */
export function task<Args, Result>(
  definition: TaskDefinition<Args, Result>,
  args: Args,
  options?: SignatureOptions,
): Signature<Args, Result>;
/** Makes an untyped signature by task name. */
export function task<Result = unknown>(name: string, args?: unknown, options?: SignatureOptions): Signature<unknown, Result>;
export function task(taskOrName: TaskDefinition | string, args: unknown = {}, options?: SignatureOptions): Signature<unknown, unknown> {
  return new Signature<unknown, unknown>(taskOrName as TaskDefinition<unknown, unknown> | string, args, options);
}

/** True for a signature made by {@link task}; `where` names the position for the error otherwise. */
export function assertSignature(value: unknown, where: string): asserts value is Signature {
  if (!(value instanceof Signature)) {
    throw new UsageError(`${where} is not a signature: build each step with task(nameOrDefinition, args, options)`);
  }
}

/**
 * The arguments a mutable task runs with after its parent produced `parent`: plain-object args get
 * `{ ...args, parent }`, array args get the parent prepended (Celery's rule), any other args are
 * passed unchanged (the result is still in `ctx.meta['stem.parentResult']`).
 */
export function withParent(args: unknown, parent: unknown): unknown {
  if (Array.isArray(args)) return [parent, ...args];
  if (typeof args === 'object' && args !== null) return { ...(args as Record<string, unknown>), parent };
  return args;
}
