/**
 * What a plugin's `apply` receives: the `Stem` instance. It is declared empty here and completed by
 * sdk/kernel.ts (`interface PluginHost extends Stem`, declaration merging), so this file imports
 * nothing from the kernel and the kernel, config and plugin types form no import cycle.
 */
// biome-ignore lint/suspicious/noEmptyInterface: completed by sdk/kernel.ts through declaration merging.
export interface PluginHost {}

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
  apply(stem: PluginHost): void | Promise<void>;
  /** Releases connections and timers the plugin opened. */
  close?(): Promise<void>;
  /** CLI commands the plugin contributes (clipanion Command classes). */
  commands?: ReadonlyArray<new () => unknown>;
}
