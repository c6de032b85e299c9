import { assertConcurrencySupported, stampConcurrency } from './concurrency-key.js';
import type { Broker, DeadLetter, PublishReport, TransactionStates } from './contracts/broker.js';
import type { ResultBackend, SetOptions, TaskStatus } from './contracts/result-backend.js';
import { parseDuration, resolveWhen } from './duration.js';
import { assertJsonSerialisable, assertValidName, assertValidNames, broadcastChannel, META, type Envelope } from './envelope.js';
import { ArgsTooLargeError, QueueFullError, TransactionNotSupportedError, UsageError } from './errors.js';
import type { StemHooks } from './hooks.js';
import { uuidv7 } from './id.js';
import type { TaskRegistry } from './registry.js';
import type { StemSettings } from './settings.js';
import { assertQueueBoundSupported, droppedStatus, QUEUE_BOUND_HEADERS } from './queue-bound.js';
import type { EnqueueOptions, TaskDefinition } from './task.js';
import { TaskHandle } from './task-handle.js';

/** What the producer uses of its Stem instance. */
export interface ProducerHost {
  readonly hooks: StemHooks;
  readonly registry: TaskRegistry;
  readonly settings: StemSettings;
  readonly broker: Broker;
  readonly backend: ResultBackend;
}

/** One item of `enqueueMany`. */
export interface EnqueueRequest {
  /** A task definition or a task name (or `broadcast://channel`). */
  task: TaskDefinition<any, any> | string;
  /** Its arguments. */
  args: unknown;
  /** Per-enqueue options. */
  options?: EnqueueOptions;
}

/** Options of a whole `enqueueMany`. */
export interface EnqueueManyOptions {
  /** The caller's open transaction, for every task of the batch (see `EnqueueOptions.transaction`). */
  transaction?: unknown;
}

const DEFAULT_PRIORITY = 5;

/** The one transaction of a batch: the batch's, or the one its requests share; mixing is a usage error. */
function transactionOf(requests: readonly EnqueueRequest[], batch: EnqueueManyOptions): unknown {
  const first = requests[0]?.options?.transaction;
  const transaction = batch.transaction ?? first;
  if (transaction === undefined && requests.every((request) => request.options?.transaction === undefined)) return undefined;
  for (const request of requests) {
    const own = request.options?.transaction;
    if (own === transaction || (own === undefined && batch.transaction !== undefined)) continue;
    throw new UsageError(
      'the tasks of one enqueueMany must all go in the same transaction (or none): pass it once, as enqueueMany(requests, { transaction })',
    );
  }
  return transaction;
}

/** How an error names a broker: its class (`RedisBroker`), or `configured broker`. */
function brokerName(broker: Broker): string {
  const name = (broker as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? name : 'configured broker';
}

/**
 * Meta keys of a task's `queued` state, written only when they apply: what the enqueue decided
 * about when and how the task runs, which the state shows nowhere else (`stem result get`).
 */
export const QUEUED_META = {
  /** Epoch ms before which the task does not start. */
  notBefore: 'stem.notBefore',
  /** Epoch ms after which it is cancelled if it has not started. */
  expiresAt: 'stem.expiresAt',
  /** `{ asked, enqueued }`: an enqueue hook moved the priority (routing clamps it into a queue's range). */
  priority: 'stem.priority',
} as const;

function queuedMeta(envelope: Envelope, askedPriority: number | undefined): Record<string, unknown> | undefined {
  if (envelope.notBefore === undefined && envelope.expiresAt === undefined && askedPriority === undefined) return undefined;
  const meta: Record<string, unknown> = {};
  if (envelope.notBefore !== undefined) meta[QUEUED_META.notBefore] = envelope.notBefore;
  if (envelope.expiresAt !== undefined) meta[QUEUED_META.expiresAt] = envelope.expiresAt;
  if (askedPriority !== undefined) meta[QUEUED_META.priority] = { asked: askedPriority, enqueued: envelope.priority };
  return meta;
}

function checkPriority(priority: number): number {
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw new UsageError(`priority ${JSON.stringify(priority)} is out of range: use a whole number from 0 (lowest) to 9 (highest)`);
  }
  return priority;
}

/**
 * The enqueue phase: builds envelopes (ids, delays, priorities, overrides), runs them through the
 * `enqueue` hook, and publishes them with their `queued` state in as few round trips as the
 * broker and backend allow.
 */
export class Producer {
  constructor(private readonly stem: ProducerHost) {}

  /** Builds the envelope for one request, before the enqueue hook. */
  buildEnvelope(request: EnqueueRequest, now: number): Envelope {
    const { task, options = {} } = request;
    const channel = typeof task === 'string' ? broadcastChannel(task) : undefined;
    let definition: TaskDefinition | undefined;
    let name: string;
    if (typeof task !== 'string') {
      definition = task;
      name = task.name;
    } else if (channel !== undefined) {
      name = channel;
    } else {
      name = task;
      // Before the registry: a name no task could have is a bad name, not an unknown task.
      assertValidName('name', name);
      const registry = this.stem.registry;
      definition = registry.size > 0 ? registry.get(task) : undefined;
    }
    const argsBytes = assertJsonSerialisable(request.args);
    const maxArgsBytes = this.stem.settings.maxArgsBytes;
    if (argsBytes > maxArgsBytes) throw new ArgsTooLargeError(name, argsBytes, maxArgsBytes);
    const defaults = definition?.options ?? {};
    const retryPolicy = options.retryPolicy ?? defaults.retryPolicy;
    const meta: Record<string, unknown> = { ...options.meta };
    if (options.retryPolicy !== undefined) meta[META.retryPolicy] = options.retryPolicy;
    if (options.timeLimit !== undefined) meta[META.timeLimitMs] = parseDuration(options.timeLimit, 'timeLimit');
    if (options.softTimeLimit !== undefined) meta[META.softTimeLimitMs] = parseDuration(options.softTimeLimit, 'softTimeLimit');
    if (options.resultTtl !== undefined) meta[META.resultTtlMs] = parseDuration(options.resultTtl, 'resultTtl');
    if (options.queue !== undefined) meta[META.queueExplicit] = true;
    const ignoreResult = options.ignoreResult ?? defaults.ignoreResult;
    if (ignoreResult !== undefined) meta[META.ignoreResult] = ignoreResult === true;

    const envelope: Envelope = {
      id: options.id ?? uuidv7(now),
      name,
      args: request.args,
      headers: options.headers ? { ...options.headers } : {},
      queue: channel !== undefined ? (task as string) : (options.queue ?? defaults.queue ?? this.stem.settings.defaultQueue),
      priority: checkPriority(options.priority ?? defaults.priority ?? DEFAULT_PRIORITY),
      attempt: 0,
      maxRetries: options.maxRetries ?? retryPolicy?.maxRetries ?? defaults.maxRetries ?? 0,
      visibilityTimeoutMs: parseDuration(
        options.visibilityTimeout ?? defaults.visibilityTimeout ?? this.stem.settings.visibilityTimeoutMs,
        'visibilityTimeout',
      ),
      createdAt: now,
      meta,
    };
    if (!Number.isInteger(envelope.maxRetries) || envelope.maxRetries < 0) {
      throw new UsageError(`maxRetries ${JSON.stringify(envelope.maxRetries)} must be a whole number of 0 or more`);
    }
    if (options.notBefore !== undefined) envelope.notBefore = resolveWhen(options.notBefore, now, 'notBefore');
    if (options.expiresAt !== undefined) envelope.expiresAt = resolveWhen(options.expiresAt, now, 'expiresAt');
    else if (options.expires !== undefined || defaults.expires !== undefined) {
      envelope.expiresAt = now + parseDuration((options.expires ?? defaults.expires)!, 'expires');
    }
    assertValidNames(envelope);
    if (channel === undefined) {
      stampConcurrency(envelope, {
        concurrencyKey: options.concurrencyKey ?? defaults.concurrencyKey,
        concurrencyLimit: options.concurrencyLimit ?? defaults.concurrencyLimit,
        ordered: options.ordered ?? defaults.ordered,
      });
    }
    return envelope;
  }

  /**
   * Enqueues many tasks: one publish and one state write, or one write of both where the broker
   * can; with a transaction, one write inside it (Broker.publishInTransaction).
   */
  async enqueueMany(requests: readonly EnqueueRequest[], batch: EnqueueManyOptions = {}): Promise<TaskHandle[]> {
    const transaction = transactionOf(requests, batch);
    // Refused before any hook runs: nothing is published, nothing is reported as sent.
    if (transaction !== undefined && this.stem.broker.publishInTransaction === undefined) {
      throw new TransactionNotSupportedError(brokerName(this.stem.broker));
    }
    const now = Date.now();
    const hooks = this.stem.hooks;
    const runHook = hooks.enqueue.isUsed();
    // Every request is checked before any hook sees one: a bad one in a batch stops it whole.
    const envelopes: Envelope[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) envelopes[i] = this.buildEnvelope(requests[i]!, now);
    let askedPriorities: Map<Envelope, number> | undefined;
    if (runHook) {
      for (let i = 0; i < envelopes.length; i++) {
        const asked = envelopes[i]!.priority;
        envelopes[i] = await hooks.enqueue.promise(envelopes[i]!);
        if (envelopes[i]!.priority !== asked) (askedPriorities ??= new Map()).set(envelopes[i]!, asked);
        try {
          // A hook may route to another queue: what is published must be as valid as what was asked.
          assertValidNames(envelopes[i]!);
        } catch (error) {
          if (hooks.notPublished.isUsed()) await hooks.notPublished.promise(envelopes.slice(0, i + 1), error);
          throw error;
        }
      }
    }
    const backend = this.stem.backend;
    let handles: Array<TaskHandle | undefined> | undefined;
    let publishing = envelopes;
    if (hooks.enqueueShortCircuit.isUsed()) {
      handles = new Array(requests.length);
      publishing = [];
      for (let i = 0; i < envelopes.length; i++) {
        const envelope = envelopes[i]!;
        const existing = await hooks.enqueueShortCircuit.promise(envelope);
        if (existing === undefined) publishing.push(envelope);
        else handles[i] = new TaskHandle(backend, { ...envelope, id: existing.id, meta: { ...envelope.meta, ...existing.meta } });
      }
      if (hooks.notPublished.isUsed() && publishing.length < envelopes.length) {
        await hooks.notPublished.promise(
          envelopes.filter((_, i) => handles![i] !== undefined),
          undefined,
        );
      }
      if (publishing.length === 0) return handles as TaskHandle[];
    }
    const broker = this.stem.broker;
    // A keyed task on a broker that cannot enforce its key is refused, never published unlimited.
    for (const envelope of publishing) assertConcurrencySupported(broker, envelope);
    // A task to a bounded queue on a broker that cannot bound it is refused, never published unbounded.
    let bounded = false;
    for (const envelope of publishing) if (assertQueueBoundSupported(broker, envelope)) bounded = true;
    if (bounded && transaction !== undefined) {
      throw new UsageError(
        `a task to a bounded queue ` +
          `(${publishing.find((envelope) => envelope.headers[QUEUE_BOUND_HEADERS.maxLength] !== undefined)!.queue}) cannot be ` +
          `enqueued in a transaction yet; enqueue it outside the transaction`,
      );
    }
    let statuses: TaskStatus[] | undefined;
    let stateOptions: SetOptions | undefined;
    if (this.stem.settings.trackQueued) {
      const extended = this.stem.settings.extendedResults;
      statuses = [];
      for (const envelope of publishing) {
        // Fire and forget: no state at all, not even `queued`.
        if (envelope.meta[META.ignoreResult] === true) continue;
        const status: TaskStatus = {
          id: envelope.id,
          state: 'queued',
          name: envelope.name,
          queue: envelope.queue,
          attempt: 0,
          updatedAt: now,
        };
        const meta = queuedMeta(envelope, askedPriorities?.get(envelope));
        if (meta !== undefined) status.meta = meta;
        if (extended) status.args = envelope.args;
        statuses.push(status);
      }
      if (statuses.length === 0) statuses = undefined;
      // Generated ids cannot be watched yet, so nobody needs notifying; a caller's own id might be.
      stateOptions = { ttlMs: this.stem.settings.resultTtlMs, quiet: requests.every((request) => request.options?.id === undefined) };
    }
    let combined = false;
    let report: PublishReport | undefined;
    try {
      if (bounded) {
        // Bounded: a plain publish, so that a refused or dropped task never shows a `queued` state
        // written with it; the states follow the broker's verdict (below).
        report = (await broker.publish(publishing)) || undefined;
      } else if (transaction !== undefined) {
        // In the caller's transaction: the states go in it too, or not at all (see the contract).
        const states: TransactionStates | undefined = statuses === undefined ? undefined : { backend, statuses, options: stateOptions! };
        await broker.publishInTransaction!(transaction, publishing, states);
        combined = true;
      } else if (statuses !== undefined && broker.publishWithStates !== undefined) {
        // Where the broker can, the messages and their states are one atomic write.
        combined = await broker.publishWithStates(backend, statuses, stateOptions!, publishing);
      }
      if (!bounded && !combined) await broker.publish(publishing);
    } catch (error) {
      // Tasks a drop-oldest queue dropped before it refused the rest still end cancelled.
      if (error instanceof QueueFullError && error.dropped.length > 0) await this.recordDropped({ dropped: error.dropped as DeadLetter[] });
      if (!(error instanceof QueueFullError) || error.taskIds.length === publishing.length || statuses === undefined) {
        if (hooks.notPublished.isUsed()) await hooks.notPublished.promise(publishing, error);
        throw error;
      }
      // Only part of the batch was refused (another queue's tasks went in): those get their states.
      const refused = new Set(error.taskIds);
      if (hooks.notPublished.isUsed())
        await hooks.notPublished.promise(
          publishing.filter((envelope) => refused.has(envelope.id)),
          error,
        );
      const sent = statuses.filter((status) => !refused.has(status.id));
      if (sent.length > 0) await backend.set(sent, stateOptions).catch(() => undefined);
      throw error;
    }
    if (statuses !== undefined && !combined) {
      // Published first, so that a publish that fails leaves no `queued` state of a task that does
      // not exist. Written after, it cannot hide a later state: every backend keeps the newest state
      // of an attempt, whichever write arrives last. If it fails, the task is still on its way and
      // its worker writes its states: the enqueue succeeded, and throwing would invite a duplicate.
      await backend
        .set(statuses, stateOptions)
        .catch((error: unknown) =>
          process.emitWarning(
            `the queued state of ${publishing.length === 1 ? `task ${publishing[0]!.id}` : `${publishing.length} tasks`} could not be ` +
              `written (${(error as Error)?.message ?? String(error)}); ` +
              `the task${publishing.length === 1 ? ' is' : 's are'} published and will report from the worker`,
            'StemProducerWarning',
          ),
        );
    }
    if (report && report.dropped.length > 0) await this.recordDropped(report);
    if (hooks.published.isUsed()) await hooks.published.promise(publishing);
    return envelopes.map((envelope, i) => handles?.[i] ?? new TaskHandle(backend, envelope));
  }

  /** Writes the `cancelled` state of the tasks a `drop-oldest` queue dropped, so no one waits on them for ever. */
  private async recordDropped(report: PublishReport): Promise<void> {
    const now = Date.now();
    const statuses: TaskStatus[] = [];
    for (const letter of report.dropped) {
      if (letter.envelope !== undefined && letter.envelope.meta[META.ignoreResult] !== true)
        statuses.push(droppedStatus({ ...letter, envelope: letter.envelope }, now));
    }
    if (statuses.length === 0) return;
    await this.stem.backend
      .set(statuses, { ttlMs: this.stem.settings.resultTtlMs })
      .catch((error: unknown) =>
        process.emitWarning(
          `the cancelled state of ${statuses.length} task(s) a full queue dropped could not be written ` +
            `(${(error as Error)?.message ?? String(error)}); they are in the queue's dead letters`,
          'StemProducerWarning',
        ),
      );
  }
}
