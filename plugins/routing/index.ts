import { broadcastChannel, META, type Envelope } from '../../sdk/envelope.js';
import { ConfigError } from '../../sdk/errors.js';
import { assertBoundedQueuesSupported, stampQueueBound } from '../../sdk/queue-bound.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { WorkerOptions } from '../../sdk/worker-options.js';
import { RoutingTable } from './routing-table.js';
import { UndeclaredBroadcasts } from './undeclared-broadcasts.js';

export { RoutingTable } from './routing-table.js';
export type { EnqueueRequestView, PriorityClamp, RouteDecision, RoutingTableDump } from './routing-table.js';
export type { PriorityRange } from './routing-config.js';
export { ROUTING_WARNING } from './undeclared-broadcasts.js';

/** The envelope meta key that records a priority moved into its queue's range: `{ from, to }`. */
export const CLAMPED_META = 'routing.clamped';

/** Options of `routing()`: a file or an in-code config (exactly one). */
export interface RoutingOptions {
  /** A routing file: `.yaml`, `.yml` or `.json`. */
  file?: string;
  /** The same content as an object, for configs written in code. */
  config?: unknown;
  /** When true, every glob must match a task the Stem instance registers (checked at apply). */
  checkTasks?: boolean;
}

/** The keys of {@link RoutingOptions}. */
const ROUTING_OPTION_KEYS = { file: true, config: true, checkTasks: true } as const satisfies OptionKeys<RoutingOptions>;

/** The routing plugin, with its resolved table for commands and tests. */
export interface RoutingPlugin extends StemPlugin {
  /** The validated, resolved routing table. */
  readonly table: RoutingTable;
}

function routeEnvelope(table: RoutingTable, envelope: Envelope, kernelDefaultQueue: string, undeclared: UndeclaredBroadcasts): Envelope {
  const channel = broadcastChannel(envelope.queue);
  if (channel !== undefined) undeclared.published(channel);
  const decision = table.resolveEnqueue(
    {
      task: envelope.name,
      headers: envelope.headers,
      queue: envelope.queue,
      queueExplicit: envelope.meta[META.queueExplicit] === true,
      priority: envelope.priority,
    },
    kernelDefaultQueue,
  );
  envelope.queue = decision.queue;
  envelope.priority = decision.priority;
  if (decision.clamped !== null) envelope.meta[CLAMPED_META] = decision.clamped;
  const bound = table.boundOf(decision.queue);
  if (bound !== undefined) stampQueueBound(envelope, bound);
  return envelope;
}

function subscribeWorker(table: RoutingTable, options: WorkerOptions, undeclared: UndeclaredBroadcasts): WorkerOptions {
  if (options.broadcasts !== undefined) undeclared.subscribed(options.broadcasts);
  const named = options.queues !== undefined && options.queues.length > 0;
  const queues = named ? options.queues!.map((queue) => table.queueFor(queue)) : (table.defaultWorkerQueues ?? options.queues);
  return {
    ...options,
    queues: queues === undefined ? undefined : [...new Set(queues)],
    // `broadcasts: []` is an explicit "none"; only a worker that says nothing gets every channel.
    broadcasts: options.broadcasts ?? table.broadcastChannels,
  };
}

/**
 * Routes tasks by a routing file: `routing({ file: 'routing.yaml' })`. The file is read and
 * validated here, so a bad file fails at startup with `file:line:column: key: what is wrong`.
 */
export function routing(options: RoutingOptions): RoutingPlugin {
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('routing: give options: routing({ file: "routing.yaml" }) or routing({ config: { … } })');
  assertKnownOptions('routing()', options, ROUTING_OPTION_KEYS);
  const hasFile = options.file !== undefined;
  const hasConfig = options.config !== undefined;
  if (hasFile === hasConfig)
    throw new ConfigError('routing: give exactly one of option "file" (a .yaml, .yml or .json path) and option "config" (an object)');
  if (hasFile && (typeof options.file !== 'string' || options.file === ''))
    throw new ConfigError('routing: option "file" must be a path to a .yaml, .yml or .json file');
  const table = hasFile ? RoutingTable.fromFile(options.file!) : RoutingTable.fromObject(options.config);
  return {
    name: 'routing',
    table,
    apply(stem) {
      if (options.checkTasks === true) table.checkTasks(stem.registry.names());
      const kernelDefaultQueue = stem.settings.defaultQueue;
      const undeclared = new UndeclaredBroadcasts(table);
      stem.hooks.enqueue.tap('routing', (envelope) => routeEnvelope(table, envelope, kernelDefaultQueue, undeclared));
      stem.hooks.workerOptions.tap('routing', (worker) => subscribeWorker(table, worker, undeclared));
      const bounded = table.boundedQueues;
      if (bounded.length > 0) {
        // Refused at configuration, once every plugin is applied (the broker is known): a bound a
        // broker cannot enforce must never be silently ignored.
        stem.hooks.ready.tapPromise('routing', async () =>
          assertBoundedQueuesSupported(stem.broker, `${table.source}: queue "${bounded[0]}" with max_length`),
        );
      }
    },
  };
}
