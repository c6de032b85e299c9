import type { StemPlugin } from '../../sdk/plugin.js';
import { control } from '../../plugins/control/index.js';
import { events } from '../../plugins/events/index.js';
import { rateLimit } from '../../plugins/rate-limit/index.js';
import { revoke } from '../../plugins/revoke/index.js';
import { unique } from '../../plugins/unique/index.js';

/**
 * The worker-operations plugins the CLI adds to every config: control, revoke, rate-limit,
 * unique and events (which publishes only for workers started with events: true), each left out when `configured` already has a
 * plugin of that name (so a stem.config.ts
 * may list one with its own options). Without `namespace` they use the config's resolved one.
 */
export function defaultOperationsPlugins(configured: readonly StemPlugin[] = [], namespace?: string): StemPlugin[] {
  const options = namespace === undefined ? {} : { namespace };
  const present = new Set(configured.map((plugin) => plugin.name));
  const defaults = [control(options), revoke(options), rateLimit(options), unique(), events()];
  return defaults.filter((plugin) => !present.has(plugin.name));
}
