import { ConfigError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { Beat, resolveBeatOptions, type BeatOptions } from './beat.js';

export { Beat, firingLockKey, resolveBeatOptions, type BeatOptions, type FiringOutcome, type FiringReport } from './beat.js';
export { firingTaskId } from './schedule-rules.js';
export { ScheduleEditor, type ScheduleChange, type SchedulePlan } from './schedule-editor.js';
export { parseScheduleFile, readScheduleFile } from './schedule-file.js';

/** The name every Beat plugin is applied under. */
export const BEAT_PLUGIN_NAME = 'beat';

/** Options of `beat()`: a Beat's options, and whether it starts with the Stem. */
export interface BeatPluginOptions extends BeatOptions {
  /** Start ticking once every plugin is applied (the kernel's ready hook; default true); false to call `plugin.beat.start()` yourself. */
  autoStart?: boolean;
}

/** The keys of {@link BeatPluginOptions}: what `beat()` accepts. */
const BEAT_OPTION_KEYS = {
  tick: true,
  lockTtl: true,
  batchSize: true,
  owner: true,
  schedules: true,
  onFiring: true,
  onError: true,
  now: true,
  random: true,
  autoStart: true,
} as const satisfies OptionKeys<BeatPluginOptions>;

/** The `beat()` plugin: its options, and the Beat it runs once applied. */
export interface BeatPlugin extends StemPlugin {
  /** The options it was created with. */
  readonly options: BeatPluginOptions;
  /** The Beat of the Stem it was applied to (undefined before apply). */
  readonly beat: Beat | undefined;
}

/** True when `plugin` is a `beat()` plugin. */
export function isBeatPlugin(plugin: StemPlugin): plugin is BeatPlugin {
  return plugin.name === BEAT_PLUGIN_NAME && 'options' in plugin;
}

/**
 * Runs Beat inside a Stem: `beat({ tick: '1s' })` in the plugins fires the due entries of the
 * schedule store. Options are validated here; the Beat starts when the Stem has applied every
 * plugin (so list it anywhere), and stops on `stem.close()`.
 *
 * @example Stem.create({ plugins: [redis({ url }), beat({ schedules: [{ id: 'resize', task: 'media.resize', schedule: 'every:5m' }] })] })
 */
export function beat(options: BeatPluginOptions = {}): BeatPlugin {
  assertKnownOptions('beat()', options, BEAT_OPTION_KEYS);
  resolveBeatOptions(options, 'beat()');
  if (options.autoStart !== undefined && typeof options.autoStart !== 'boolean') {
    throw new ConfigError('beat(): option "autoStart" must be true or false');
  }
  let instance: Beat | undefined;
  return {
    name: BEAT_PLUGIN_NAME,
    options,
    get beat() {
      return instance;
    },
    apply(stem: Stem) {
      const created = new Beat(stem, options);
      instance = created;
      if (options.autoStart !== false) stem.hooks.ready.tap(BEAT_PLUGIN_NAME, () => created.start());
    },
    async close() {
      await instance?.stop();
    },
  };
}
