import { join } from 'node:path';
import type { StemPlugin } from '../../sdk/plugin.js';

/** The broker the stem CLI uses when none is configured, relative to the project directory. */
export const DEFAULT_BROKER_URL = 'sqlite://.stem/stem.db';

/** The name of the default's plugin in a resolved config. */
export const DEFAULT_BROKER_PLUGIN = 'sqlite-default';

/** The default's plugin, with what it did once applied. */
export interface DefaultBrokerPlugin extends StemPlugin {
  /** The database file it opens (`<project>/.stem/stem.db`). */
  readonly file: string;
  /** True once applied with no other broker provided: the SQLite services are in use. */
  readonly used: boolean;
}

/**
 * The CLI's zero-server default: applied after the config file's plugins and the URL plugins, it
 * provides the SQLite services (`<projectDir>/.stem/stem.db`, created on first use) for every
 * service still missing, but only when no plugin provided a broker. Loads better-sqlite3 only then.
 * `Stem.create()` in code does not use it: there, memory stays the default.
 */
export function defaultBrokerPlugin(projectDir: string): DefaultBrokerPlugin {
  const file = join(projectDir, '.stem', 'stem.db');
  let inner: StemPlugin | undefined;
  let used = false;
  return {
    name: DEFAULT_BROKER_PLUGIN,
    file,
    get used() {
      return used;
    },
    async apply(stem) {
      if (stem.provides('broker')) return;
      const { sqliteFallback } = await import('../../plugins/sqlite/index.js');
      inner = sqliteFallback({ path: file });
      await inner.apply(stem);
      used = true;
    },
    async close() {
      await inner?.close?.();
    },
  };
}

/** The default's plugin among `plugins`, if the config has one. */
export function findDefaultBroker(plugins: readonly StemPlugin[] | undefined): DefaultBrokerPlugin | undefined {
  return plugins?.find((plugin): plugin is DefaultBrokerPlugin => plugin?.name === DEFAULT_BROKER_PLUGIN);
}

/** `plugins` without the default's plugin: for commands that mean to run in memory (`stem demo`). */
export function withoutDefaultBroker(plugins: readonly StemPlugin[] | undefined): StemPlugin[] {
  return (plugins ?? []).filter((plugin) => plugin?.name !== DEFAULT_BROKER_PLUGIN);
}
