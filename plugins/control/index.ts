import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';
import { checkNamespace } from './control-protocol.js';
import { QueuePauses } from './queue-pauses.js';
import { WorkerControl } from './worker-control.js';

export { ControlClient, type ControlRequestOptions } from './control-client.js';
export type { ControlReply } from './control-protocol.js';
export { BUILTIN_COMMANDS } from './worker-control.js';

/** Options of `control()`. */
export interface ControlOptions {
  /** The control namespace (default: the CLI's `--namespace` / STEM_CONTROL_NAMESPACE, else `stem`). */
  namespace?: string;
}

/** The keys of {@link ControlOptions}. */
const CONTROL_OPTION_KEYS = { namespace: true } as const satisfies OptionKeys<ControlOptions>;

/**
 * Remote control: every worker answers `ping`, `stats`, `inspect`, `pause`, `resume` and
 * `shutdown` requests on `broadcast://<namespace>.control`, and hands any other command to the
 * `control` hook (revoke and rate-limit tap it). Paused queues persist in the revoke store.
 *
 * @example Stem.create({ plugins: [redis({ url }), control()] })
 */
export function control(options: ControlOptions = {}): StemPlugin {
  assertKnownOptions('control()', options, CONTROL_OPTION_KEYS);
  const fixed = options.namespace === undefined ? undefined : checkNamespace(options.namespace, 'control');
  const running = new Map<WorkerHandle, WorkerControl>();
  return {
    name: 'control',
    apply(stem) {
      const namespace = fixed ?? stem.settings.namespace;
      stem.hooks.workerStart.tapPromise('control', async (info) => {
        const pauses = new QueuePauses(stem.service('revokeStore'), namespace);
        await pauses.prune().catch(() => undefined);
        const endpoint = new WorkerControl(stem, info, namespace, pauses);
        await endpoint.start();
        running.set(info, endpoint);
      });
      stem.hooks.workerStop.tapPromise('control', async (info) => {
        const endpoint = running.get(info);
        running.delete(info);
        await endpoint?.stop();
      });
    },
    async close() {
      const endpoints = [...running.values()];
      running.clear();
      await Promise.all(endpoints.map((endpoint) => endpoint.stop()));
    },
  };
}
