import type { QueueBound } from '../../sdk/queue-bound.js';
import type { TaskGlob } from './task-glob.js';

/** The priorities a queue accepts; an enqueue outside is clamped into it. */
export interface PriorityRange {
  /** Lowest priority, 0–9. */
  min: number;
  /** Highest priority, 0–9, at least `min`. */
  max: number;
}

/** A glob together with where it was written, for messages about it. */
export interface LocatedGlob {
  /** The glob. */
  glob: TaskGlob;
  /** The key it was written under, e.g. `queues.emails.routing_key`. */
  key: string;
  /** `file:line:column` of the glob. */
  where: string;
}

/** `default_queue`: where a task goes when nothing else decides. */
export interface DefaultQueueDeclaration {
  /** The queue. */
  queue: string;
  /** Another name for it (explicit, or `default` unless a queue of that name is declared). */
  alias: string | undefined;
  /** Further queues that workers naming no queues consume alongside the default one. */
  fallbacks: string[];
}

/** One entry of `queues`. */
export interface QueueDeclaration {
  /** The queue name. */
  name: string;
  /** The globs of `routing_key`, in file order. */
  routingKeys: LocatedGlob[];
  /** `priority_range`, when given. */
  priorityRange: PriorityRange | undefined;
  /** `max_length` and `overflow`, when given: the broker bounds the queue (docs/flow-control.md). */
  bound: QueueBound | undefined;
}

/** One entry of `broadcasts`. */
export interface BroadcastDeclaration {
  /** The channel name (`maintenance` for `broadcast://maintenance`). */
  name: string;
  /** How it is delivered: every subscribed worker gets its own copy. */
  delivery: 'fanout';
}

/** Where a route sends a task. */
export type RouteTarget = { kind: 'queue'; name: string } | { kind: 'broadcast'; name: string };

/** One entry of `routes`, in file order. */
export interface RouteRule {
  /** Its position in `routes` (0-based). */
  index: number;
  /** Task globs, any of which must match; empty means any task. */
  tasks: LocatedGlob[];
  /** Header values that must all be equal. */
  headers: Record<string, string>;
  /** Where it sends matching tasks. */
  target: RouteTarget;
  /** A priority that replaces the enqueued one (then clamped into the target queue's range). */
  priority: number | undefined;
  /** When true the route beats a queue named explicitly at enqueue. */
  force: boolean;
}

/** A routing file after validation: everything the routing table needs, nothing of YAML. */
export interface RoutingConfig {
  /** The file name, or a label for a config given in code. */
  source: string;
  /** `default_queue`, when given. */
  defaultQueue: DefaultQueueDeclaration | undefined;
  /** `queues`, in file order. */
  queues: QueueDeclaration[];
  /** `broadcasts`, in file order. */
  broadcasts: BroadcastDeclaration[];
  /** `routes`, in file order. */
  routes: RouteRule[];
}
