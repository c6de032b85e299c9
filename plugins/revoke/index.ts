import type { RevokeEntry } from '../../sdk/contracts/revoke-store.js';
import { parseDuration, type Duration } from '../../sdk/duration.js';
import { assertValidName } from '../../sdk/envelope.js';
import { ConfigError, UsageError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';
import { nextRevokeVersion, RevokeList } from './revoke-list.js';

/** The control command that carries new revokes to live workers: `{ entries: RevokeEntry[] }`. */
export const REVOKE_COMMAND = 'revoke';
/** The cancel reason of a revoked task. */
export const REVOKED_REASON = 'revoked';

/** Options of the `revoke()` plugin. */
export interface RevokePluginOptions {
  /** The control namespace (default: the CLI's `--namespace` / STEM_CONTROL_NAMESPACE, else `stem`). */
  namespace?: string;
  /** How often workers read new revokes from the store (default 1s). */
  syncInterval?: Duration;
}

/** The keys of {@link RevokePluginOptions}. */
const REVOKE_PLUGIN_OPTION_KEYS = { namespace: true, syncInterval: true } as const satisfies OptionKeys<RevokePluginOptions>;

/** Options of `revokeTask()`. */
export interface RevokeOptions {
  /** Also abort the task where it runs now (through `ctx.signal`); it ends cancelled. */
  terminate?: boolean;
  /** Why, for people (kept with the revoke). */
  reason?: string;
  /** The control namespace (default as for the plugin). */
  namespace?: string;
  /** How long the revoke is kept (default 7d): a delivery of the id after that runs again. */
  retention?: Duration;
}

/** The keys of {@link RevokeOptions}. */
const REVOKE_OPTION_KEYS = { terminate: true, reason: true, namespace: true, retention: true } as const satisfies OptionKeys<RevokeOptions>;

/** What a worker answers to a revoke request. */
export interface RevokeReply {
  /** The ids the request revoked. */
  taskIds: string[];
  /** Those of them this worker aborted (or had aborted) because they were running on it. */
  terminated: string[];
}

/**
 * Revokes tasks: persists the revokes in the revoke store (so they survive restarts and reach
 * workers that start later) and marks those still queued as cancelled. Workers with the revoke
 * plugin see it within their sync interval; send `REVOKE_COMMAND` with the returned entries over
 * control (as `stem worker revoke` does) for an immediate effect.
 *
 * @example await revokeTask(stem, handle.id, { terminate: true });
 */
export async function revokeTask(stem: Stem, taskIds: string | readonly string[], options: RevokeOptions = {}): Promise<RevokeEntry[]> {
  assertKnownOptions('revokeTask()', options, REVOKE_OPTION_KEYS);
  const ids = typeof taskIds === 'string' ? [taskIds] : [...taskIds];
  if (ids.length === 0) throw new UsageError('revokeTask: give one or more task ids');
  // An id no task can have is refused before anything is stored (Postgres text cannot hold NUL).
  for (const id of ids) assertValidName('taskId', id);
  const now = Date.now();
  const retentionMs = parseDuration(options.retention ?? '7d', 'retention');
  const namespace = options.namespace ?? stem.settings.namespace;
  const entries: RevokeEntry[] = ids.map((taskId) => ({
    namespace,
    taskId,
    version: nextRevokeVersion(),
    terminate: options.terminate === true,
    revokedAt: now,
    expiresAt: now + retentionMs,
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  }));
  await stem.service('revokeStore').upsert(entries);
  const backend = stem.backend;
  const statuses = await Promise.all(ids.map((id) => backend.get(id)));
  const waiting = statuses.filter((status) => status !== null && (status.state === 'queued' || status.state === 'retried'));
  if (waiting.length > 0) {
    const message = options.reason === undefined ? REVOKED_REASON : `${REVOKED_REASON}: ${options.reason}`;
    await backend.set(
      waiting.map((status) => ({
        ...status!,
        state: 'cancelled' as const,
        error: { type: 'TaskCancelledError', message },
        updatedAt: now,
      })),
    );
  }
  return entries;
}

function isRevokeEntry(value: unknown): value is RevokeEntry {
  const entry = value as RevokeEntry | null;
  return typeof entry?.taskId === 'string' && typeof entry.namespace === 'string' && typeof entry.version === 'number';
}

/**
 * Revoke on the worker: a delivery whose id is revoked is cancelled instead of run (dispatch
 * verdict `cancel`, signal `task-revoked`), and a revoke with `terminate` aborts the task where it
 * runs. Revokes come from the revoke store (read at worker start and every `syncInterval`) and
 * from `revoke` control requests.
 *
 * @example Stem.create({ plugins: [redis({ url }), control(), revoke()] })
 */
export function revoke(options: RevokePluginOptions = {}): StemPlugin {
  assertKnownOptions('revoke()', options, REVOKE_PLUGIN_OPTION_KEYS);
  const syncMs = parseDuration(options.syncInterval ?? '1s', 'revoke: option "syncInterval"');
  if (syncMs <= 0) throw new ConfigError('revoke: option "syncInterval" must be above 0, e.g. "1s"');
  const workers = new Set<WorkerHandle>();
  const terminatedOn = new Map<string, Set<string>>();
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'revoke',
    apply(stem) {
      const list = new RevokeList(() => stem.service('revokeStore'), options.namespace ?? stem.settings.namespace);
      const signals = stem.signals;
      const terminate = (entries: readonly RevokeEntry[]): void => {
        for (const entry of entries) {
          if (!entry.terminate) continue;
          for (const worker of workers) {
            if (!worker.terminate(entry.taskId, entry.reason === undefined ? REVOKED_REASON : `${REVOKED_REASON}: ${entry.reason}`))
              continue;
            const on = terminatedOn.get(entry.taskId) ?? new Set<string>();
            terminatedOn.set(entry.taskId, on.add(worker.id));
            if (signals.has('task-revoked')) signals.emit('task-revoked', { taskId: entry.taskId, workerId: worker.id, terminate: true });
          }
        }
      };
      const sync = async (): Promise<void> => terminate(await list.sync());

      stem.hooks.dispatch.tapPromise({ name: 'revoke', stage: -100 }, async (delivery, worker) => {
        const envelope = delivery.envelope;
        if (!list.has(envelope.id)) return undefined;
        if (signals.has('task-revoked'))
          signals.emit('task-revoked', { taskId: envelope.id, workerId: worker.id, terminate: false, envelope });
        return { action: 'cancel', reason: REVOKED_REASON };
      });
      stem.hooks.workerStart.tapPromise('revoke', async (info) => {
        await sync();
        workers.add(info);
        timer ??= setInterval(() => {
          sync().catch((error: Error) =>
            process.emitWarning(`revoke: could not read revokes (${error.message}); retrying`, 'StemRevokeWarning'),
          );
        }, syncMs).unref();
      });
      stem.hooks.workerStop.tapPromise('revoke', async (info) => {
        workers.delete(info);
        if (workers.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      });
      stem.hooks.control.tapPromise('revoke', async (command, worker) => {
        if (command.name !== REVOKE_COMMAND) return undefined;
        const carried = Array.isArray(command.args.entries) ? command.args.entries.filter(isRevokeEntry) : [];
        terminate(list.learn(carried));
        await sync().catch(() => undefined);
        const taskIds = carried.map((entry) => entry.taskId);
        const reply: RevokeReply = { taskIds, terminated: taskIds.filter((id) => terminatedOn.get(id)?.has(worker.id)) };
        return reply;
      });
    },
    async close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
