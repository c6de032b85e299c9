import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import { type Duration, formatDuration, parseDuration } from '../../sdk/duration.js';
import type { Envelope } from '../../sdk/envelope.js';
import { ConfigError, StemError, UsageError } from '../../sdk/errors.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { defaultUniqueKey } from './unique-key.js';

declare module '../../sdk/task.js' {
  interface TaskOptions {
    /**
     * Debounce window (needs the debounce plugin on producers and workers): each enqueue waits
     * this long; an enqueue with the same key within it supersedes the waiting one, so only the
     * last of a burst runs, once, a window after it was enqueued.
     */
    debounce?: Duration;
    /** The debounce key from the arguments (default: task name + SHA-256 of the canonical JSON arguments). */
    debounceKey?: (args: any) => string;
  }
}

/**
 * Headers of a debounced task. `window` (`5s`) and `key` may be set per enqueue (a task enqueued by
 * name, or a one-off); the plugin writes `key` on every debounced envelope, which is how the
 * worker knows to check it.
 */
export const DEBOUNCE_HEADERS = {
  window: 'stem-debounce',
  key: 'stem-debounce-key',
} as const;

/** The error code (and cancel reason prefix) of a task a newer enqueue superseded. */
export const SUPERSEDED = 'superseded';

/**
 * How long a key stays claimed after its task's window, so that a task whose worker was down for
 * a while still finds out whether it was superseded. A key is released when its task is dispatched.
 */
const KEY_GRACE_MS = 24 * 60 * 60_000;
/** Tries of the claim: each lost race means another enqueue of the key came in between. */
const ATTEMPTS = 50;

/** Options of `debounce()`. */
export interface DebounceOptions {
  /** Prefix of the lock keys (default `debounce`). */
  keyPrefix?: string;
}

/** The keys of {@link DebounceOptions}. */
const DEBOUNCE_OPTION_KEYS = { keyPrefix: true } as const satisfies OptionKeys<DebounceOptions>;

/** The options of one enqueue that debounce it by `window` under `key`: `stem.enqueue(task, args, debounced('5s', 'acme'))`. */
export function debounced(window: Duration, key?: string): { headers: Record<string, string> } {
  const ms = parseDuration(window, 'debounce');
  const headers: Record<string, string> = { [DEBOUNCE_HEADERS.window]: formatDuration(ms) };
  if (key !== undefined) headers[DEBOUNCE_HEADERS.key] = key;
  return { headers };
}

function supersededMessage(key: string, by: string, windowMs: number): string {
  return `${SUPERSEDED}: a newer enqueue with debounce key "${key}" (task ${by}) replaced it within the ${formatDuration(windowMs)} window`;
}

/**
 * Debounce: the last enqueue of a key within its window wins and runs once, after the window.
 * Each debounced enqueue is published delayed by the window (later still if it asked), then
 * claims its key in the lock store; the task that held the key, if it is still waiting, is
 * superseded: its state becomes `cancelled` with reason `superseded: …` at once (a wait on it
 * ends), and when it falls due the worker cancels it instead of running it. A task takes its key
 * back (releases it) when a worker dispatches it, so an enqueue after that starts a new window.
 * The claim is a compare-and-swap over the lock store's atomic `release`/`acquire` (a Lua script
 * on Redis, one statement on Postgres), so two producers of one key never both win. Beside the
 * unique plugin's first-wins window (`unique: true`), which keeps the first enqueue instead.
 * Needs the plugin on the workers too (it cancels superseded tasks there) and a lock store every
 * producer and worker shares (redis() or postgres()).
 *
 * @example defineTask({ name: 'search.reindex', options: { debounce: '5s', debounceKey: (a) => a.userId }, handler })
 */
export function debounce(options: DebounceOptions = {}): StemPlugin {
  assertKnownOptions('debounce()', options, DEBOUNCE_OPTION_KEYS);
  const prefix = options.keyPrefix ?? 'debounce';
  if (typeof prefix !== 'string' || prefix === '')
    throw new ConfigError(`debounce: option "keyPrefix" must be a non-empty string (got ${JSON.stringify(prefix)})`);
  return {
    name: 'debounce',
    apply(stem) {
      const windows = new Map<string, number>();
      for (const task of stem.registry.list()) {
        if (task.options.debounce !== undefined)
          windows.set(task.name, parseDuration(task.options.debounce, `task "${task.name}": option "debounce"`));
      }
      const lockKey = (key: string) => `${prefix}:${key}`;

      /** The window of a debounced envelope (its header, else its task's option), or undefined. */
      const windowOf = (envelope: Envelope): number | undefined => {
        const header = envelope.headers[DEBOUNCE_HEADERS.window];
        if (header !== undefined) return parseDuration(header, `task "${envelope.name}": header ${DEBOUNCE_HEADERS.window}`);
        return windows.get(envelope.name);
      };

      stem.hooks.enqueue.tapPromise('debounce', async (envelope) => {
        const windowMs = windowOf(envelope);
        if (windowMs === undefined) return envelope;
        if (windowMs <= 0) throw new UsageError(`task "${envelope.name}": a debounce window must be longer than 0`);
        if (envelope.headers[DEBOUNCE_HEADERS.key] === undefined) {
          const own = stem.registry.find(envelope.name)?.options.debounceKey;
          envelope.headers[DEBOUNCE_HEADERS.key] = own
            ? `${envelope.name}:${own(envelope.args)}`
            : defaultUniqueKey(envelope.name, envelope.args);
        }
        envelope.headers[DEBOUNCE_HEADERS.window] = formatDuration(windowMs);
        const due = Date.now() + windowMs;
        if (envelope.notBefore === undefined || envelope.notBefore < due) envelope.notBefore = due;
        return envelope;
      });

      // After the publish: a publish that failed supersedes nothing.
      stem.hooks.published.tapPromise('debounce', async (envelopes) => {
        for (const envelope of envelopes) {
          const key = envelope.headers[DEBOUNCE_HEADERS.key];
          if (key === undefined) continue;
          const windowMs = windowOf(envelope) ?? 0;
          const ttlMs = Math.max(0, (envelope.notBefore ?? 0) - Date.now()) + KEY_GRACE_MS;
          for (const superseded of await claim(lockKey(key), envelope.id, ttlMs)) await markSuperseded(superseded, key, envelope, windowMs);
        }
      });

      stem.hooks.dispatch.tapPromise('debounce', async (delivery) => {
        const key = delivery.envelope.headers[DEBOUNCE_HEADERS.key];
        if (key === undefined) return undefined;
        // Releasing the key is the task's claim to run: it succeeds only while no newer enqueue took the key.
        const locks = stem.service('lockStore');
        if (await locks.release(lockKey(key), delivery.envelope.id)) return undefined;
        const status = await stem.backend.get(delivery.envelope.id);
        if (status?.state === 'cancelled' && status.error?.code === SUPERSEDED) return { action: 'cancel', reason: status.error.message };
        const holder = await locks.owner(lockKey(key));
        // Another task holds the key: a newer enqueue took it (its producer is writing this one's state).
        if (holder !== null)
          return { action: 'cancel', reason: `${SUPERSEDED}: a newer enqueue with debounce key "${key}" (task ${holder}) replaced it` };
        // Not superseded (a redelivery after its own release, or its key expired): it runs.
        return undefined;
      });

      /** Takes `key` for `id`; returns the ids of the waiting tasks it took the key from (they lost their turn). */
      async function claim(key: string, id: string, ttlMs: number): Promise<string[]> {
        const locks = stem.service('lockStore');
        const released: string[] = [];
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          const holder = await locks.owner(key);
          if (holder === id) return released;
          // A release that fails means the holder was dispatched meanwhile (it runs) or another enqueue won: look again.
          if (holder !== null) {
            if (!(await locks.release(key, holder))) continue;
            released.push(holder);
          }
          if (await locks.acquire(key, id, ttlMs)) return released;
          // Another enqueue took the key between the release and the acquire: it is newer, so this one
          // takes the key from it (the one whose swap lands last wins).
        }
        throw new StemError(
          'debounce-contended',
          `debounce: the lock store could not settle key "${key}" after ${ATTEMPTS} tries; retry the enqueue`,
        );
      }

      /** Writes the `cancelled` state of a superseded task, unless it already moved on. */
      async function markSuperseded(id: string, key: string, by: Envelope, windowMs: number): Promise<void> {
        const status = await stem.backend.get(id);
        // Its key was taken from it while it waited, so it never runs. No state (ignoreResult) stays
        // none, and one that moved on (dispatched at the very edge of its window) is left as it is.
        if (status === null || (status.state !== 'queued' && status.state !== 'pending')) return;
        const cancelled: TaskStatus = {
          ...status,
          state: 'cancelled',
          error: { type: 'TaskCancelledError', code: SUPERSEDED, message: supersededMessage(key, by.id, windowMs) },
          updatedAt: Date.now(),
        };
        await stem.backend.set([cancelled]);
      }
    },
  };
}
