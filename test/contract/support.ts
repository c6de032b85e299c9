import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import type { BrokerConsumer, Delivery } from '../../sdk/contracts/broker.js';
import type { Envelope } from '../../sdk/envelope.js';
import { uuidv7 } from '../../sdk/id.js';

/** How an implementation under test is made and disposed of; one per adapter (memory, Redis, Postgres). */
export interface ContractFactory<T> {
  /** Shown in test names, e.g. `memory` or `redis`. */
  name: string;
  /** A fresh, connected implementation. */
  create(): Promise<T>;
  /** Disposes of it (default: `impl.close()`). */
  destroy?(impl: T): Promise<void>;
}

/** Something the contracts can close. */
export interface Closable {
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** Registers cleanup to run (last registered first) before the implementation is destroyed. */
export type Defer = (cleanup: () => Promise<unknown> | unknown) => void;

/** The body of one contract case. */
export type CaseBody<T> = (t: Test, impl: T, defer: Defer) => Promise<void>;

/**
 * Runs a suite's cases under one parent test named after the adapter. Each case gets its own
 * implementation from the factory, and disposes of it even when an assertion throws.
 */
export async function runContract<T extends Closable>(
  t: Test,
  title: string,
  factory: ContractFactory<T>,
  cases: ReadonlyArray<readonly [name: string, body: CaseBody<T>]>,
): Promise<void> {
  await t.test(`${factory.name}: ${title}`, async (t) => {
    for (const [name, body] of cases) {
      await t.test(name, async (t) => {
        const impl = await factory.create();
        const cleanups: Array<() => Promise<unknown> | unknown> = [];
        try {
          await body(t, impl, (cleanup) => cleanups.push(cleanup));
        } finally {
          for (const cleanup of cleanups.reverse()) await cleanup();
          await (factory.destroy === undefined ? impl.close() : factory.destroy(impl));
        }
      });
    }
  });
}

/**
 * A name no other run uses, so that several runs (and several suites) can share one Redis
 * database or Postgres schema.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A valid envelope for `queue`, with a fresh id; `overrides` replace any field. */
export function makeEnvelope(queue: string, overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: uuidv7(),
    name: 'contract.noop',
    args: { n: 1 },
    headers: {},
    queue,
    priority: 0,
    attempt: 0,
    maxRetries: 0,
    visibilityTimeoutMs: 30_000,
    createdAt: Date.now(),
    meta: {},
    ...overrides,
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` until it holds; false when `timeoutMs` passed first. The default is a ceiling that only a broken
 * behaviour reaches: a loaded machine can take seconds for what takes milliseconds here.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 30_000, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * Timer callbacks and another process's clock can run a few ms off ours; "not before T" is
 * asserted as "not before T minus this".
 */
export const CLOCK_SLACK_MS = 25;

/**
 * One fetch that gives up after `ms`. The timer is ref'd on purpose: AbortSignal.timeout's is not,
 * and a process whose only pending work is a waiting fetch would exit mid-test.
 */
export async function fetchWithin(consumer: BrokerConsumer, max: number, ms: number): Promise<Delivery[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await consumer.fetch(max, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** What a try of {@link retryOnStall} answers when the machine stalled past its short time before it could check anything. */
export const STALLED = Symbol('stalled');

/**
 * Runs a case that needs a short time (a ttl or lease it waits out) to hold between two of its steps. A stall of the machine
 * can outlast it; the try sees that from the clock and answers {@link STALLED} before judging anything, and the case is run
 * again with a time four times longer, up to `tries` times (the last try is judged whatever the clock says).
 */
export async function retryOnStall(
  t: Test,
  firstMs: number,
  body: (ms: number, lastTry: boolean) => Promise<void | typeof STALLED>,
  tries = 4,
): Promise<void> {
  let ms = firstMs;
  for (let attempt = 1; attempt <= tries; attempt++) {
    if ((await body(ms, attempt === tries)) !== STALLED) return;
    t.comment(`the machine stalled past ${ms} ms between two steps: trying again with ${ms * 4} ms`);
    ms *= 4;
  }
}
