import type { Rate } from '../../sdk/contracts/rate-limiter.js';
import { assertValidName } from '../../sdk/envelope.js';
import { ConfigError, UsageError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { parseRateLimit, type RateLimitSpec } from './rate-limit-spec.js';
import { RateLimitOverrides } from './rate-limit-overrides.js';

export { parseRateLimit, type RateLimitSpec } from './rate-limit-spec.js';

declare module '../../sdk/task.js' {
  interface TaskOptions {
    /** Starts allowed across every worker, e.g. `'10/s'`, `'100/m'`, `'1000/h'` (needs the rate-limit plugin on workers). */
    rateLimit?: RateLimitSpec;
  }
}

/** The control command that changes a task's rate at run time: `{ task, rateLimit?: string | null }`. */
export const RATE_LIMIT_COMMAND = 'rate-limit';

/** Options of `rateLimit()`. */
export interface RateLimitOptions {
  /** The control namespace (default: the CLI's `--namespace` / STEM_CONTROL_NAMESPACE, else `stem`). */
  namespace?: string;
  /** The header whose value gets its own bucket per task (default `tenant`); false for one bucket per task. */
  tenantHeader?: string | false;
}

/** The keys of {@link RateLimitOptions}. */
const RATE_LIMIT_OPTION_KEYS = { namespace: true, tenantHeader: true } as const satisfies OptionKeys<RateLimitOptions>;

/** Options of `setRateLimit()`. */
export interface SetRateLimitOptions {
  /** The control namespace (default as for the plugin). */
  namespace?: string;
}

/** The keys of {@link SetRateLimitOptions}. */
const SET_RATE_LIMIT_OPTION_KEYS = { namespace: true } as const satisfies OptionKeys<SetRateLimitOptions>;

/** What a worker answers to a rate-limit request. */
export interface RateLimitReply {
  /** The task. */
  task: string;
  /** The rate now in force on the worker, or null for none. */
  rateLimit: string | null;
}

/** Deferred deliveries of one bucket are spread over its coming tokens; this many buckets at most are tracked. */
const MAX_TRACKED_BUCKETS = 10_000;

/**
 * Sets a task's rate for every worker at run time, stored in the revoke store so that workers
 * starting later use it too: a rate, null for "no limit", undefined to go back to the task's
 * `rateLimit` option. Live workers read it when they get a `rate-limit` control request (as
 * `stem worker rate-limit` sends) or when they start.
 *
 * @example await setRateLimit(stem, 'emails.send', '50/m');
 */
export async function setRateLimit(
  stem: Stem,
  task: string,
  spec: RateLimitSpec | null | undefined,
  options: SetRateLimitOptions = {},
): Promise<void> {
  assertKnownOptions('setRateLimit()', options, SET_RATE_LIMIT_OPTION_KEYS);
  if (typeof task !== 'string' || task === '') throw new UsageError('setRateLimit: give a task name');
  assertValidName('name', task);
  if (spec !== undefined && spec !== null) parseRateLimit(spec, `rate limit of "${task}"`);
  await new RateLimitOverrides(options.namespace ?? stem.settings.namespace).store(stem.service('revokeStore'), task, spec);
}

/**
 * Rate limits on the worker: before a task with a `rateLimit` runs, one token is taken from the
 * rate limiter service (shared by every worker on the same store; on Redis one Lua call), per task
 * and per tenant header. A denied delivery is deferred until its token is due (dispatch verdict
 * `defer`), never failed; deferred ones of the same bucket are spread over the coming tokens
 * instead of all waking at once.
 *
 * @example defineTask({ name: 'emails.send', options: { rateLimit: '10/s' }, handler })
 */
export function rateLimit(options: RateLimitOptions = {}): StemPlugin {
  assertKnownOptions('rateLimit()', options, RATE_LIMIT_OPTION_KEYS);
  const tenantHeader = options.tenantHeader ?? 'tenant';
  if (tenantHeader !== false && (typeof tenantHeader !== 'string' || tenantHeader === '')) {
    throw new ConfigError(`rateLimit: option "tenantHeader" must be a header name or false (got ${JSON.stringify(tenantHeader)})`);
  }
  return {
    name: 'rate-limit',
    apply(stem) {
      const namespace = options.namespace ?? stem.settings.namespace;
      const overrides = new RateLimitOverrides(namespace);
      const rates = new Map<string, Rate>();
      const rateOf = (spec: string, where: string): Rate => {
        let rate = rates.get(spec);
        if (rate === undefined) rates.set(spec, (rate = parseRateLimit(spec, where)));
        return rate;
      };
      for (const task of stem.registry.list()) {
        if (task.options.rateLimit !== undefined) rateOf(task.options.rateLimit, `task "${task.name}": option "rateLimit"`);
      }
      const effective = (task: string): string | null => {
        const override = overrides.get(task);
        return override !== undefined ? override : (stem.registry.find(task)?.options.rateLimit ?? null);
      };
      const nextSlot = new Map<string, number>();
      const deferral = (key: string, retryAfterMs: number, rate: Rate): number => {
        const now = Date.now();
        const earliest = now + retryAfterMs;
        const reserved = nextSlot.get(key);
        const at = reserved !== undefined && reserved > earliest ? reserved : earliest;
        if (nextSlot.size >= MAX_TRACKED_BUCKETS) for (const [bucket, slot] of nextSlot) if (slot <= now) nextSlot.delete(bucket);
        nextSlot.set(key, at + rate.intervalMs);
        return at - now;
      };

      stem.hooks.dispatch.tapPromise('rate-limit', async (delivery) => {
        const envelope = delivery.envelope;
        const spec = effective(envelope.name);
        if (spec === null) return undefined;
        const rate = rateOf(spec, `rate limit of "${envelope.name}"`);
        const tenant = tenantHeader === false ? undefined : envelope.headers[tenantHeader];
        const key = tenant === undefined ? `${namespace}:${envelope.name}` : `${namespace}:${envelope.name}:${tenantHeader}=${tenant}`;
        const decision = await stem.service('rateLimiter').acquire(key, rate);
        if (decision.allowed) return undefined;
        return { action: 'defer', delayMs: deferral(key, decision.retryAfterMs, rate), reason: `rate limit ${spec}` };
      });
      stem.hooks.workerStart.tapPromise('rate-limit', async () => {
        await overrides.load(stem.service('revokeStore'));
      });
      stem.hooks.control.tapPromise('rate-limit', async (command) => {
        if (command.name !== RATE_LIMIT_COMMAND) return undefined;
        const { task, rateLimit: spec } = command.args;
        if (typeof task !== 'string' || task === '') throw new UsageError(`${RATE_LIMIT_COMMAND}: args.task must be a task name`);
        if (spec !== undefined && spec !== null) rateOf(String(spec), `rate limit of "${task}"`);
        overrides.apply(task, spec === undefined || spec === null ? (spec as null | undefined) : String(spec));
        const reply: RateLimitReply = { task, rateLimit: effective(task) };
        return reply;
      });
    },
  };
}
