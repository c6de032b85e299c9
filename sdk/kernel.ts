import type { ResultBackend, TaskPage, TaskQuery, TaskStatus } from './contracts/result-backend.js';
import type { Broker } from './contracts/broker.js';
import type { ServiceName, Services } from './contracts/index.js';
import { assertStemConfigKeys, type StemConfig } from './config.js';
import { assertValidName } from './envelope.js';
import { ConfigError, ListingNotSupportedError } from './errors.js';
import { EventStream } from './event-stream.js';
import { StemHooks } from './hooks.js';
import { createMemoryService } from './memory/index.js';
import type { StemPlugin } from './plugin.js';
import { Producer, type EnqueueManyOptions, type EnqueueRequest } from './producer.js';
import { TaskRegistry } from './registry.js';
import { resolveSettings, type StemSettings } from './settings.js';
import { Signals } from './signals.js';
import type { EnqueueOptions, TaskDefinition } from './task.js';
import { pendingStatus, TaskHandle } from './task-handle.js';
import { retryTask } from './task-retry.js';
import { Worker } from './worker.js';
import { assertWorkerOptionKeys, type WorkerOptions } from './worker-options.js';

declare module './plugin.js' {
  /** Plugins are applied to the kernel: `apply(stem)` receives a {@link Stem}. */
  interface PluginHost extends Stem {}
}

interface ProvidedService {
  impl: Services[ServiceName];
  /** Owned by the kernel (a memory default): closed by stem.close(). */
  ownedByKernel: boolean;
}

/**
 * The kernel: typed hooks for each phase, the six services, the task registry and the signal bus.
 * Everything else (Redis, Postgres, routing, canvas, Beat, telemetry) is a plugin that taps the
 * hooks or provides a service.
 */
export class Stem {
  /** Every hook of every phase: see sdk/hooks.ts. */
  readonly hooks = new StemHooks();
  /** Lifecycle signals users subscribe to with `stem.signals.on(...)`. */
  readonly signals = new Signals();
  /** The tasks this instance knows. */
  readonly registry: TaskRegistry;
  /** Resolved settings. */
  readonly settings: StemSettings;
  /** The config it was created from. */
  readonly config: StemConfig;

  private readonly services = new Map<ServiceName, ProvidedService>();
  private readonly applied: StemPlugin[] = [];
  private readonly workers = new Set<Worker>();
  private readonly producer = new Producer(this);
  private closing: Promise<void> | undefined;
  private eventStream: EventStream | undefined;

  private constructor(config: StemConfig) {
    this.config = config;
    this.registry = new TaskRegistry(config.tasks ?? []);
    this.settings = resolveSettings(config);
  }

  /** Creates an instance and applies the config's plugins in order (async applies awaited). */
  static async create(config: StemConfig = {}): Promise<Stem> {
    assertStemConfigKeys(config);
    const stem = new Stem(config);
    const names = new Set<string>();
    for (const plugin of config.plugins ?? []) {
      if (!plugin || typeof plugin.apply !== 'function') {
        throw new ConfigError(
          `plugins: ${JSON.stringify((plugin as { name?: string } | undefined)?.name ?? plugin)} is not a plugin (an object with ` +
            `name and apply(stem))`,
        );
      }
      if (names.has(plugin.name)) throw new ConfigError(`plugins: "${plugin.name}" is listed twice`);
      names.add(plugin.name);
      try {
        await plugin.apply(stem);
      } catch (error) {
        await stem.close();
        throw error;
      }
      stem.applied.push(plugin);
    }
    if (stem.hooks.ready.isUsed()) {
      try {
        await stem.hooks.ready.promise();
      } catch (error) {
        await stem.close();
        throw error;
      }
    }
    return stem;
  }

  /** The plugins applied, in order. */
  get plugins(): readonly StemPlugin[] {
    return this.applied;
  }

  /** Provides a service; a later provide of the same name replaces the earlier one. */
  provide<K extends ServiceName>(name: K, impl: Services[K]): void {
    this.services.set(name, { impl, ownedByKernel: false });
  }

  /** True when a plugin provided `name` (the memory default does not count). */
  provides(name: ServiceName): boolean {
    return this.services.get(name)?.ownedByKernel === false;
  }

  /** The service `name`; the in-memory default is created on first use when no plugin provided one. */
  service<K extends ServiceName>(name: K): Services[K] {
    let entry = this.services.get(name);
    if (entry === undefined) {
      entry = { impl: createMemoryService(name, { resultTtlMs: this.settings.resultTtlMs }), ownedByKernel: true };
      this.services.set(name, entry);
    }
    return entry.impl as Services[K];
  }

  /** The broker service. */
  get broker(): Broker {
    return this.service('broker');
  }

  /** The result backend service. */
  get backend(): ResultBackend {
    return this.service('backend');
  }

  /**
   * The events workers publish with `events: true` (task and worker events, from every process of
   * the namespace, through the event bus service): `stem.events.on('task-failed', …)` or
   * `for await (const event of stem.events)`. For watching only: see docs/events.md.
   */
  get events(): EventStream {
    this.eventStream ??= new EventStream(() => this.service('eventBus'));
    return this.eventStream;
  }

  /** Enqueues a task; with a definition, args and the handle's result are typed. */
  async enqueue<Args, Result>(task: TaskDefinition<Args, Result>, args: Args, options?: EnqueueOptions): Promise<TaskHandle<Result>>;
  /** Enqueues a task by name (or `broadcast://channel`); untyped. */
  async enqueue<Result = unknown>(task: string, args?: unknown, options?: EnqueueOptions): Promise<TaskHandle<Result>>;
  async enqueue(task: TaskDefinition | string, args: unknown = {}, options?: EnqueueOptions): Promise<TaskHandle> {
    const [handle] = await this.producer.enqueueMany([{ task, args, options }]);
    return handle!;
  }

  /**
   * Enqueues many tasks in one publish (one round trip where the broker allows); with `{ transaction }`,
   * inside the caller's open transaction (see `EnqueueOptions.transaction`).
   */
  async enqueueMany(requests: readonly EnqueueRequest[], options?: EnqueueManyOptions): Promise<TaskHandle[]> {
    return this.producer.enqueueMany(requests, options);
  }

  /**
   * The status of a task id; `pending` when unknown. Throws InvalidNameError for an id no task can
   * have (empty, over 256 bytes, control characters), as enqueue refuses it, before any store is asked.
   */
  async status(id: string): Promise<TaskStatus> {
    assertValidName('taskId', id);
    return (await this.backend.get(id)) ?? pendingStatus(id);
  }

  /**
   * Stored tasks by state, name, queue and time, newest first, a page at a time (pass the page's
   * `cursor` for the next). Throws ListingNotSupportedError when the result backend cannot list.
   */
  async listTasks(query: TaskQuery = {}): Promise<TaskPage> {
    const backend = this.backend;
    if (backend.listTasks === undefined) throw new ListingNotSupportedError(backend.constructor?.name || 'configured');
    return backend.listTasks(query);
  }

  /**
   * Runs a failed or cancelled task again under the same id, from the envelope its state recorded
   * (see sdk/task-retry.ts); returns its handle. Throws UnknownTaskIdError, TaskNotRetryableError
   * (not failed or cancelled), EnvelopeNotRecordedError, or InvalidNameError for an id no task can have.
   */
  async retry<Result = unknown>(id: string): Promise<TaskHandle<Result>> {
    assertValidName('taskId', id);
    const envelope = await retryTask(this, id);
    return new TaskHandle<Result>(this.backend, envelope);
  }

  /** A handle on an existing task id, to await its result from any process; throws InvalidNameError for an id no task can have. */
  handle<Result = unknown>(id: string): TaskHandle<Result> {
    assertValidName('taskId', id);
    return new TaskHandle<Result>(this.backend, { id });
  }

  /** Creates a worker (not started): `await worker.start()`. Throws ConfigError for an option WorkerOptions does not have. */
  worker(options: WorkerOptions = {}): Worker {
    assertWorkerOptionKeys(options, 'stem.worker()');
    const worker = new Worker(
      this,
      this.hooks.workerOptions.isUsed()
        ? this.hooks.workerOptions.call({ ...this.settings.worker, ...options })
        : { ...this.settings.worker, ...options },
    );
    this.workers.add(worker);
    worker.onStopped(() => this.workers.delete(worker));
    return worker;
  }

  /** Stops running workers, then closes plugins in reverse order and the memory defaults. */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const worker of [...this.workers]) await worker.stop().catch((error) => errors.push(error));
    await this.eventStream?.close();
    for (const plugin of [...this.applied].reverse()) {
      if (plugin.close) await plugin.close().catch((error) => errors.push(error));
    }
    for (const entry of this.services.values()) {
      if (entry.ownedByKernel) await entry.impl.close().catch((error) => errors.push(error));
    }
    if (errors.length > 0) throw errors[0];
  }
}
