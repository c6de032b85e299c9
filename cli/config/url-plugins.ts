import type { ServiceName } from '../../sdk/contracts/index.js';
import { UsageError } from '../../sdk/errors.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { maskUrl, urlScheme } from '../../sdk/url.js';

type PluginFactory = (options: { url: string; namespace?: string; schema?: string }) => StemPlugin;

/** Query parameters of a service URL that become plugin options: `?namespace=billing&schema=jobs`. */
const URL_OPTIONS = ['namespace', 'schema'] as const;

/** Splits plugin options out of a URL's query string; the URL handed to the driver keeps the rest. */
export function splitUrlOptions(url: string): { url: string; options: Partial<Record<(typeof URL_OPTIONS)[number], string>> } {
  const queryAt = url.indexOf('?');
  if (queryAt < 0) return { url, options: {} };
  const params = new URLSearchParams(url.slice(queryAt + 1));
  const options: Partial<Record<(typeof URL_OPTIONS)[number], string>> = {};
  for (const key of URL_OPTIONS) {
    const value = params.get(key);
    if (value !== null) options[key] = value;
    params.delete(key);
  }
  const rest = params.toString();
  return { url: url.slice(0, queryAt) + (rest ? `?${rest}` : ''), options };
}
type FactoryModule = Record<string, unknown>;

/** Which plugin module serves a URL scheme; `memory` needs none (the kernel's default). */
const SCHEME_MODULES: Record<string, string | null> = {
  memory: null,
  redis: 'redis',
  rediss: 'redis',
  'redis+cluster': 'redis',
  'rediss+cluster': 'redis',
  'redis+sentinel': 'redis',
  'rediss+sentinel': 'redis',
  postgres: 'postgres',
  postgresql: 'postgres',
  sqlite: 'sqlite',
};

/** The factory export of each plugin module for each service. */
const FACTORY_NAMES: Record<string, Partial<Record<ServiceName, string>>> = {
  redis: {
    broker: 'redisBroker',
    backend: 'redisResultBackend',
    revokeStore: 'redisRevokeStore',
    rateLimiter: 'redisRateLimiter',
    scheduleStore: 'redisScheduleStore',
    lockStore: 'redisLockStore',
  },
  postgres: {
    broker: 'postgresBroker',
    backend: 'postgresResultBackend',
    revokeStore: 'postgresRevokeStore',
    rateLimiter: 'postgresRateLimiter',
    scheduleStore: 'postgresScheduleStore',
    lockStore: 'postgresLockStore',
  },
  sqlite: {
    broker: 'sqliteBroker',
    backend: 'sqliteResultBackend',
    revokeStore: 'sqliteRevokeStore',
    rateLimiter: 'sqliteRateLimiter',
    scheduleStore: 'sqliteScheduleStore',
    lockStore: 'sqliteLockStore',
  },
};

const loadedModules = new Map<string, Promise<FactoryModule>>();

function importPluginModule(name: string): Promise<FactoryModule> {
  let loaded = loadedModules.get(name);
  if (!loaded) {
    loaded = import(`../../plugins/${name}/index.js`) as Promise<FactoryModule>;
    loadedModules.set(name, loaded);
  }
  return loaded;
}

/** The URL schemes the CLI understands. */
export const SUPPORTED_SCHEMES = Object.keys(SCHEME_MODULES);

/**
 * The plugin that provides `service` at `url`, chosen by the URL's scheme; undefined for
 * `memory://` (the kernel's in-memory default). `variable` names where the URL came from.
 */
export async function pluginForUrl(service: ServiceName, fullUrl: string, variable: string): Promise<StemPlugin | undefined> {
  const { url, options } = splitUrlOptions(fullUrl);
  const scheme = urlScheme(url);
  if (!(scheme in SCHEME_MODULES)) {
    throw new UsageError(
      `${variable}: "${maskUrl(url)}" has an unknown scheme; use one of ${SUPPORTED_SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  const moduleName = SCHEME_MODULES[scheme];
  if (moduleName === null || moduleName === undefined) return undefined;
  const factoryName = FACTORY_NAMES[moduleName]?.[service];
  const pluginModule = await importPluginModule(moduleName);
  const factory = factoryName === undefined ? undefined : (pluginModule[factoryName] as PluginFactory | undefined);
  if (typeof factory !== 'function') {
    throw new UsageError(`${variable}: the ${moduleName} plugin cannot provide the ${service} service`);
  }
  if (options.schema !== undefined && moduleName !== 'postgres') {
    throw new UsageError(`${variable}: "?schema=" applies to postgres:// URLs only`);
  }
  const plugin = factory({ url, ...options });
  // The same service may come from several variables (broker URL also serves locks); keep names unique.
  return { ...plugin, name: `${plugin.name}:${service}`, apply: plugin.apply.bind(plugin), close: plugin.close?.bind(plugin) };
}
