import { hostname as osHostname } from 'node:os';
import { UnsupportedCapabilityError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { WorkerOptions } from '../../sdk/worker-options.js';
import { EventPublisher } from './event-publisher.js';

export { EventPublisher } from './event-publisher.js';

/** Options of `events()`. */
export interface EventsOptions {
  /** Publish the events of every worker, not only those created with `events: true` (default false). */
  all?: boolean;
}

/** The keys of {@link EventsOptions}. */
const EVENTS_OPTION_KEYS = { all: true } as const satisfies OptionKeys<EventsOptions>;

/**
 * Publishes task events (received, started, succeeded, failed, retried, cancelled, revoked,
 * dead-lettered) and worker events (online, heartbeat, offline) of the workers created with
 * `events: true` (`stem worker start --events`) through the event bus service: Redis pub/sub,
 * Postgres NOTIFY, or in-process with the memory default. `stem.events` and `stem events` read them.
 * The CLI applies it to every config; in code, list it after the broker plugin.
 *
 * @example Stem.create({ plugins: [redis({ url }), events()], worker: { events: true } })
 */
export function events(options: EventsOptions = {}): StemPlugin {
  assertKnownOptions('events()', options, EVENTS_OPTION_KEYS);
  const enabled = new Set<string>();
  let publisher: EventPublisher | undefined;
  return {
    name: 'events',
    apply(stem) {
      const own = new EventPublisher(stem.signals, () => stem.service('eventBus'));
      publisher = own;
      stem.hooks.workerOptions.tap('events', (workerOptions: WorkerOptions) => {
        if (!(workerOptions.events ?? options.all)) return workerOptions;
        // The worker's id is known here only when given: name it now, as the worker would.
        const hostname = workerOptions.hostname ?? osHostname();
        const id = workerOptions.id ?? `${hostname}-${process.pid}-${uuidv7().slice(-6)}`;
        enabled.add(id);
        return { ...workerOptions, id, hostname };
      });
      stem.hooks.workerStart.tapPromise('events', async (worker) => {
        if (!enabled.has(worker.id)) return;
        // A plugin-provided broker with no event bus of its own (SQLite) would publish into this process only.
        if (stem.provides('broker') && !stem.provides('eventBus')) {
          const name = stem.broker.constructor?.name?.replace(/Broker$/, '') || 'configured';
          throw new UnsupportedCapabilityError('events', name, `worker ${worker.id} with events: true`);
        }
        own.attach(worker);
      });
      stem.hooks.workerStop.tapPromise('events', async (worker) => {
        enabled.delete(worker.id);
        await own.detach(worker);
      });
    },
    async close() {
      await publisher?.flush();
    },
  };
}
