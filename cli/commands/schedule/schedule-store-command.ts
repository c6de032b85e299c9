import { Option } from 'clipanion';
import type { ResolvedConfig } from '../../config/index.js';
import type { Stem } from '../../../sdk/kernel.js';
import { maskUrl } from '../../../sdk/url.js';
import { StemCommand } from '../../stem-command.js';

/**
 * The base of the commands that work on a schedule store: `--store URL` (else
 * STEM_SCHEDULE_STORE_URL, else the config's store, else the broker's, which is the SQLite default when none is configured), and a
 * Stem that runs no Beat.
 */
export abstract class ScheduleStoreCommand extends StemCommand {
  /** The schedule store URL; the scheme picks the plugin. */
  store = Option.String('--store', {
    description:
      "Schedule store URL (redis://, postgres://, memory://); default STEM_SCHEDULE_STORE_URL, else the config's, else the " +
      "broker's (sqlite://.stem/stem.db when none is configured)",
  });

  /** The config with `--store` applied and any beat() plugin left out (these commands never fire). */
  protected async scheduleConfig(): Promise<ResolvedConfig> {
    const config = await this.loadConfig(this.store === undefined ? {} : { scheduleStoreUrl: this.store });
    const { isBeatPlugin } = await import('../../../plugins/beat/index.js');
    config.plugins = (config.plugins ?? []).filter((plugin) => !isBeatPlugin(plugin));
    // A named store is all these commands use: the zero-server default broker would only create
    // `.stem/stem.db` in the project for nothing.
    if (config.urls.scheduleStore !== undefined) {
      const { withoutDefaultBroker } = await import('../../config/default-broker.js');
      config.plugins = withoutDefaultBroker(config.plugins);
    }
    return config;
  }

  /** Creates the Stem, runs `work` with it, and closes it. */
  protected async withStem<T>(work: (stem: Stem, config: ResolvedConfig) => Promise<T>): Promise<T> {
    const config = await this.scheduleConfig();
    const { Stem } = await import('../../../sdk/kernel.js');
    const stem = await Stem.create(config);
    try {
      return await work(stem, config);
    } finally {
      await stem.close();
    }
  }

  /** Where the entries live, for messages: the masked URL, `the config's store`, or `memory`. */
  protected storeLabel(stem: Stem, config: ResolvedConfig): string {
    if (config.urls.scheduleStore !== undefined) return maskUrl(config.urls.scheduleStore);
    return stem.provides('scheduleStore') ? "the config's schedule store" : 'memory';
  }

  /** Warns on stderr that a memory store forgets everything when the command ends. */
  protected warnIfMemory(stem: Stem): void {
    if (stem.provides('scheduleStore')) return;
    this.context.stderr.write(
      'stem: note: the schedule store is in memory and ends with this command; pass --store redis://… or postgres://…, or set ' +
        'STEM_SCHEDULE_STORE_URL (or STEM_BROKER_URL: schedules live with the broker)\n',
    );
  }
}
