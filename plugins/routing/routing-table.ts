import type { QueueBound } from '../../sdk/queue-bound.js';
import { broadcastAddress, isBroadcastAddress } from '../../sdk/envelope.js';
import { ConfigError } from '../../sdk/errors.js';
import { parseRoutingObject, readRoutingFile } from './parse-routing-config.js';
import type { LocatedGlob, PriorityRange, RouteRule, RoutingConfig } from './routing-config.js';

const DEFAULT_PRIORITY = 5;
const KERNEL_DEFAULT_QUEUE = 'default';

/** A priority moved into its queue's range: what was asked and what was kept. */
export interface PriorityClamp {
  /** The priority asked for (after a route's override). */
  from: number;
  /** The priority the task was enqueued with. */
  to: number;
}

/** Where a task goes and why. */
export interface RouteDecision {
  /** The queue, or `broadcast://<channel>` for a broadcast. */
  queue: string;
  /** The priority it is enqueued with, inside its queue's range. */
  priority: number;
  /** Set when the priority was moved into the queue's range. */
  clamped: PriorityClamp | null;
  /**
   * The rule that decided: `routes[N]`, `explicit queue`, `queues.<name>.routing_key`,
   * `task queue` (the queue the task gave itself), `default_queue`, `broadcast address`, or `none`.
   */
  matchedBy: string;
}

/** An enqueue as the producer built it, before routing. */
export interface EnqueueRequestView {
  /** The task name. */
  task: string;
  /** Its headers. */
  headers?: Readonly<Record<string, string>>;
  /** The queue the producer chose: explicit, the task's own, or the kernel default. */
  queue: string;
  /** True when the caller named `queue` at enqueue. */
  queueExplicit: boolean;
  /** The priority the producer chose. */
  priority: number;
}

/** The table as plain data, for `stem routing dump --json`. */
export interface RoutingTableDump {
  /** The file it was read from. */
  source: string;
  /** `default_queue`, resolved. */
  defaultQueue: { queue: string; alias: string | null; fallbacks: string[] } | null;
  /** Queues in file order (their routing keys are tried in this order). */
  queues: Array<{ name: string; routingKeys: string[]; priorityRange: PriorityRange | null; bound?: QueueBound }>;
  /** Broadcast channels. */
  broadcasts: Array<{ name: string; address: string; delivery: 'fanout' }>;
  /** Routes in the order they are tried. */
  routes: Array<{
    index: number;
    tasks: string[];
    headers: Record<string, string>;
    goesTo: string;
    priority: number | null;
    force: boolean;
  }>;
}

function matchesRoute(route: RouteRule, taskName: string, headers: Readonly<Record<string, string>>): boolean {
  if (route.tasks.length > 0 && !route.tasks.some((task) => task.glob.matches(taskName))) return false;
  for (const name in route.headers) if (headers[name] !== route.headers[name]) return false;
  return true;
}

/**
 * A validated routing config, resolved for lookups: which queue (or broadcast) a task goes to
 * and with what priority. Precedence: a forced route, then an explicit queue, then the other
 * routes, then routing keys, then the queue the task gave itself, then `default_queue`.
 */
export class RoutingTable {
  private readonly ranges = new Map<string, PriorityRange>();
  private readonly bounds = new Map<string, QueueBound>();
  private readonly aliases = new Map<string, string>();
  private readonly routingKeys: Array<LocatedGlob & { queue: string }> = [];

  constructor(
    /** The validated config this table resolves. */
    readonly config: RoutingConfig,
  ) {
    for (const queue of config.queues) {
      if (queue.priorityRange !== undefined) this.ranges.set(queue.name, queue.priorityRange);
      if (queue.bound !== undefined) this.bounds.set(queue.name, queue.bound);
      for (const key of queue.routingKeys) this.routingKeys.push({ ...key, queue: queue.name });
    }
    const fallback = config.defaultQueue;
    if (fallback?.alias !== undefined) this.aliases.set(fallback.alias, fallback.queue);
  }

  /** Reads, validates and resolves a routing file (`.yaml`, `.yml` or `.json`). */
  static fromFile(file: string): RoutingTable {
    return new RoutingTable(readRoutingFile(file));
  }

  /** Validates and resolves a routing config given as an object (the file's shape). */
  static fromObject(value: unknown, sourceName?: string): RoutingTable {
    return new RoutingTable(parseRoutingObject(value, sourceName));
  }

  /** The file name (or label) the config came from. */
  get source(): string {
    return this.config.source;
  }

  /** The queue of `default_queue`, when the file has one. */
  get defaultQueue(): string | undefined {
    return this.config.defaultQueue?.queue;
  }

  /** Every declared broadcast channel, in file order. */
  get broadcastChannels(): string[] {
    return this.config.broadcasts.map((broadcast) => broadcast.name);
  }

  /** The queues a worker naming none consumes: the default queue and its fallbacks. */
  get defaultWorkerQueues(): string[] | undefined {
    const fallback = this.config.defaultQueue;
    return fallback === undefined ? undefined : [fallback.queue, ...fallback.fallbacks];
  }

  /** The bound (`max_length`, `overflow`) of a declared queue, or undefined. */
  boundOf(queue: string): QueueBound | undefined {
    return this.bounds.get(queue);
  }

  /** The declared queues with a `max_length`, in file order. */
  get boundedQueues(): string[] {
    return [...this.bounds.keys()];
  }

  /** The queue a name stands for: the default queue for its alias, else the name itself. */
  queueFor(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  /** The priority range of a queue, when it declares one. */
  priorityRange(queue: string): PriorityRange | undefined {
    return this.ranges.get(queue);
  }

  /**
   * Where `taskName` goes. `explicitQueue` is a queue the caller named at enqueue (only a forced
   * route beats it); `taskQueue` is the queue the task gave itself (its definition's), which
   * beats only `default_queue`.
   */
  resolve(
    taskName: string,
    headers: Readonly<Record<string, string>> = {},
    explicitQueue?: string,
    priority = DEFAULT_PRIORITY,
    taskQueue?: string,
  ): RouteDecision {
    const explicit = explicitQueue === undefined ? undefined : this.queueFor(explicitQueue);
    let queue: string;
    let matchedBy: string;
    let wanted = priority;
    const route = this.config.routes.find((rule) => (explicit === undefined || rule.force) && matchesRoute(rule, taskName, headers));
    if (route !== undefined) {
      queue = route.target.kind === 'queue' ? route.target.name : broadcastAddress(route.target.name);
      matchedBy = `routes[${route.index}]`;
      if (route.priority !== undefined) wanted = route.priority;
    } else if (explicit !== undefined) {
      queue = explicit;
      matchedBy = 'explicit queue';
    } else {
      const key = this.routingKeys.find((candidate) => candidate.glob.matches(taskName));
      if (key !== undefined) {
        queue = key.queue;
        matchedBy = key.key;
      } else if (taskQueue !== undefined) {
        queue = this.queueFor(taskQueue);
        matchedBy = 'task queue';
      } else if (this.config.defaultQueue !== undefined) {
        queue = this.config.defaultQueue.queue;
        matchedBy = 'default_queue';
      } else {
        queue = KERNEL_DEFAULT_QUEUE;
        matchedBy = 'none';
      }
    }
    const range = this.ranges.get(queue);
    const kept = range === undefined ? wanted : Math.min(range.max, Math.max(range.min, wanted));
    return { queue, priority: kept, clamped: kept === wanted ? null : { from: wanted, to: kept }, matchedBy };
  }

  /**
   * Where an enqueue goes, given the queue the producer chose: a `broadcast://` address stays as
   * it is; the kernel's default queue counts as "no queue" when the file has a `default_queue`.
   */
  resolveEnqueue(request: EnqueueRequestView, kernelDefaultQueue: string): RouteDecision {
    if (isBroadcastAddress(request.queue))
      return { queue: request.queue, priority: request.priority, clamped: null, matchedBy: 'broadcast address' };
    const explicit = request.queueExplicit ? request.queue : undefined;
    const namesNoQueue = request.queue === kernelDefaultQueue && this.config.defaultQueue !== undefined;
    const taskQueue = explicit !== undefined || namesNoQueue ? undefined : request.queue;
    return this.resolve(request.task, request.headers, explicit, request.priority, taskQueue);
  }

  /**
   * Checks that every glob (routing keys and route tasks) matches at least one of `taskNames`,
   * the tasks a process registers; throws a ConfigError naming the first glob that matches none.
   */
  checkTasks(taskNames: readonly string[]): void {
    if (taskNames.length === 0) return;
    const globs = [...this.routingKeys, ...this.config.routes.flatMap((route) => route.tasks)];
    const names = new Set(taskNames);
    for (const located of globs) {
      // A literal glob (most of a large file) is one lookup, not a pass over every task.
      if (located.glob.isLiteral ? names.has(located.glob.source) : taskNames.some((name) => located.glob.matches(name))) continue;
      const shown = taskNames.slice(0, 8).join(', ') + (taskNames.length > 8 ? ', …' : '');
      throw new ConfigError(
        `${located.where}: ${located.key}: "${located.glob}" matches none of the ${taskNames.length} registered tasks (${shown}); ` +
          `fix the glob or register the task`,
      );
    }
  }

  /** The table as plain data. */
  describe(): RoutingTableDump {
    const fallback = this.config.defaultQueue;
    return {
      source: this.config.source,
      defaultQueue:
        fallback === undefined ? null : { queue: fallback.queue, alias: fallback.alias ?? null, fallbacks: [...fallback.fallbacks] },
      queues: this.config.queues.map((queue) => ({
        name: queue.name,
        routingKeys: queue.routingKeys.map((key) => key.glob.source),
        priorityRange: queue.priorityRange ?? null,
        ...(queue.bound === undefined ? {} : { bound: { ...queue.bound } }),
      })),
      broadcasts: this.config.broadcasts.map((broadcast) => ({
        name: broadcast.name,
        address: broadcastAddress(broadcast.name),
        delivery: broadcast.delivery,
      })),
      routes: this.config.routes.map((route) => ({
        index: route.index,
        tasks: route.tasks.map((task) => task.glob.source),
        headers: { ...route.headers },
        goesTo: route.target.kind === 'queue' ? route.target.name : broadcastAddress(route.target.name),
        priority: route.priority ?? null,
        force: route.force,
      })),
    };
  }
}
