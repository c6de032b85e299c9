import type { Stem } from './kernel.js';

/**
 * A plugin: a plain object that taps the kernel's hooks or provides services in `apply`, and
 * releases what it owns in `close` (called in reverse order of application by `stem.close()`).
 * Plugins are applied in the order given; `apply` may be async.
 *
 * @example
 * const logEnqueues = (): StemPlugin => ({
 *   name: 'log-enqueues',
 *   apply(stem) {
 *     stem.hooks.enqueue.tapPromise('log-enqueues', async (envelope) => { console.log(envelope.name); return envelope; });
 *   },
 * });
 */
export interface StemPlugin {
  /** A unique name; hooks are tapped under it. */
  name: string;
  /** Taps hooks and provides services. */
  apply(stem: Stem): void | Promise<void>;
  /** Releases connections and timers the plugin opened. */
  close?(): Promise<void>;
  /** CLI commands the plugin contributes (clipanion Command classes). */
  commands?: ReadonlyArray<new () => unknown>;
}
