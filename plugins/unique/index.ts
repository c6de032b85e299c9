import { parseDuration, type Duration } from '../../sdk/duration.js';
import { ConfigError, StemError } from '../../sdk/errors.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import type { TaskHandle } from '../../sdk/task-handle.js';
import { defaultUniqueKey } from './unique-key.js';

export { canonicalJson, defaultUniqueKey } from './unique-key.js';
export { debounce, debounced, DEBOUNCE_HEADERS, SUPERSEDED, type DebounceOptions } from './debounce.js';

declare module '../../sdk/task.js' {
  interface TaskOptions {
    /**
     * While a task with the same key was enqueued within `uniqueFor`, an enqueue returns that task instead (needs the unique plugin
     * on producers).
     */
    unique?: boolean;
    /** How long an enqueue holds its key (default 1h). */
    uniqueFor?: Duration;
    /** The key from the arguments (default: task name + SHA-256 of the canonical JSON arguments). */
    uniqueKey?: (args: any) => string;
  }
}

/** The envelope meta key of a handle that was not enqueued: the id of the task it duplicates. */
export const DUPLICATE_OF_META = 'unique.duplicateOf';
/** The envelope meta key with the uniqueness key that matched. */
export const UNIQUE_KEY_META = 'unique.key';

/** Options of `unique()`. */
export interface UniqueOptions {
  /** Prefix of the lock keys (default `unique`). */
  keyPrefix?: string;
}

/** The keys of {@link UniqueOptions}. */
const UNIQUE_OPTION_KEYS = { keyPrefix: true } as const satisfies OptionKeys<UniqueOptions>;

/** The id of the task `handle` duplicates when its enqueue was a duplicate of a unique task, else undefined. */
export function duplicateOf(handle: TaskHandle<unknown>): string | undefined {
  const id = handle.envelope?.meta[DUPLICATE_OF_META];
  return typeof id === 'string' ? id : undefined;
}

/** Tries a few times: the holder's lock may expire between a failed take and reading its owner. */
const ATTEMPTS = 3;

/**
 * Unique tasks: the first enqueue of a task marked `unique: true` takes its key in the lock store
 * for `uniqueFor`; an enqueue with the same key meanwhile publishes nothing and returns a handle on
 * the first task, whose envelope meta carries `unique.duplicateOf` (see `duplicateOf(handle)`).
 * The producer decides: it must have the task definitions registered when the plugin is applied.
 *
 * @example defineTask({ name: 'report.build', options: { unique: true, uniqueFor: '10m' }, handler })
 */
export function unique(options: UniqueOptions = {}): StemPlugin {
  assertKnownOptions('unique()', options, UNIQUE_OPTION_KEYS);
  const prefix = options.keyPrefix ?? 'unique';
  if (typeof prefix !== 'string' || prefix === '')
    throw new ConfigError(`unique: option "keyPrefix" must be a non-empty string (got ${JSON.stringify(prefix)})`);
  return {
    name: 'unique',
    apply(stem) {
      const windows = new Map<string, number>();
      for (const task of stem.registry.list()) {
        if (task.options.unique)
          windows.set(task.name, parseDuration(task.options.uniqueFor ?? '1h', `task "${task.name}": option "uniqueFor"`));
      }
      // Enqueue stays hook-free (and as fast as without the plugin) when no registered task is unique.
      if (windows.size === 0) return;
      stem.hooks.enqueueShortCircuit.tapPromise('unique', async (envelope) => {
        const definition = stem.registry.find(envelope.name);
        if (definition?.options.unique !== true) return undefined;
        const ttlMs =
          windows.get(envelope.name) ?? parseDuration(definition.options.uniqueFor ?? '1h', `task "${envelope.name}": option "uniqueFor"`);
        const key = definition.options.uniqueKey
          ? `${envelope.name}:${definition.options.uniqueKey(envelope.args)}`
          : defaultUniqueKey(envelope.name, envelope.args);
        const locks = stem.service('lockStore');
        const lockKey = `${prefix}:${key}`;
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          if (await locks.acquire(lockKey, envelope.id, ttlMs)) return undefined;
          const first = await locks.owner(lockKey);
          if (first !== null) return { id: first, meta: { [DUPLICATE_OF_META]: first, [UNIQUE_KEY_META]: key } };
        }
        throw new StemError(
          'unique-contended',
          `unique: the lock store could not settle key "${key}" after ${ATTEMPTS} tries; check that it keeps locks`,
        );
      });
    },
  };
}
