import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { assertStemConfigKeys, type StemConfig } from '../../sdk/config.js';
import type { ServiceName } from '../../sdk/contracts/index.js';
import { ConfigError, UsageError } from '../../sdk/errors.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { isTaskDefinition, type TaskDefinition } from '../../sdk/task.js';
import { defaultBrokerPlugin } from './default-broker.js';
import { loadRegistryModule } from './load-registry.js';
import { importUserModule } from './typescript-loader.js';
import { pluginForUrl } from './url-plugins.js';
import { loadFailure, settledOrExplained } from './user-module-errors.js';

/** Values from command-line flags; they beat STEM_* variables, which beat the config file. */
export interface ConfigOverrides {
  brokerUrl?: string;
  backendUrl?: string;
  scheduleStoreUrl?: string;
  revokeStoreUrl?: string;
  routingConfig?: string;
  defaultQueue?: string;
  queues?: string[];
  broadcasts?: string[];
  prefetchMultiplier?: number;
  namespace?: string;
  registry?: string;
}

/** Where loadConfig looks and what it reads. */
export interface LoadConfigOptions {
  /** A config file to use instead of searching (default: STEM_CONFIG, set by the binary's --config). */
  configFile?: string;
  /** The directory to search from (default: process.cwd()). */
  cwd?: string;
  /** The environment (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Flag values. */
  overrides?: ConfigOverrides;
}

/** The config as resolved, and where each part came from (for `stem config print`). */
export interface ResolvedConfig extends StemConfig {
  /** The file it was loaded from, if any. */
  configPath?: string;
  /** The resolved service URLs (unmasked; mask before printing). */
  urls: Partial<Record<'broker' | 'backend' | 'scheduleStore' | 'revokeStore', string>>;
  /** The control namespace (STEM_CONTROL_NAMESPACE, else the file's, else `stem`). */
  namespace: string;
  /** The routing file, if any. */
  routingConfig?: string;
}

const SEARCH_PLACES = [
  'stem.config.ts',
  'stem.config.mts',
  'stem.config.js',
  'stem.config.mjs',
  '.stemrc',
  '.stemrc.json',
  '.stemrc.yaml',
  '.stemrc.yml',
  '.stemrc.ts',
  '.stemrc.js',
  'package.json',
];

async function importModule(file: string): Promise<unknown> {
  let loaded: Record<string, unknown>;
  try {
    loaded = await settledOrExplained(importUserModule(file, dirname(file)), file);
  } catch (error) {
    // cosmiconfig annotates what it catches, which fails on a thrown string; say it here.
    if (error instanceof Error) throw error;
    throw new ConfigError(`${file} could not be loaded: ${loadFailure(error)}`);
  }
  if (loaded.default === undefined && Object.keys(loaded).length === 0) {
    throw new ConfigError(`${file} exports nothing; end it with export default defineConfig({ ... })`);
  }
  return loaded.default ?? loaded;
}

/** Checks the shape of what a config file exported, naming the field and the fix. */
function validateConfigShape(config: StemConfig, where: string): void {
  assertStemConfigKeys(config, where);
  const { plugins, tasks } = config as { plugins?: unknown; tasks?: unknown };
  if (plugins !== undefined) {
    if (!Array.isArray(plugins))
      throw new ConfigError(`${where}: plugins must be an array of plugins, e.g. plugins: [redis({ url })]; got ${describeValue(plugins)}`);
    plugins.forEach((plugin, i) => {
      const shaped =
        typeof plugin === 'object' &&
        plugin !== null &&
        typeof (plugin as StemPlugin).name === 'string' &&
        typeof (plugin as StemPlugin).apply === 'function';
      if (!shaped)
        throw new ConfigError(
          `${where}: plugins[${i}] is ${describeValue(plugin)}, not a plugin (an object with name and apply(stem)); call the ` +
            `factory, e.g. redis({ url })`,
        );
    });
  }
  if (tasks !== undefined) {
    if (!Array.isArray(tasks))
      throw new ConfigError(`${where}: tasks must be an array of defineTask(...) results; got ${describeValue(tasks)}`);
    tasks.forEach((task, i) => {
      if (!isTaskDefinition(task))
        throw new ConfigError(`${where}: tasks[${i}] is ${describeValue(task)}, not a task; use defineTask({ name, handler })`);
    });
  }
}

/** A short description of a bad value for an error message. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Whether `cwd` has a file cosmiconfig could load: any search place, or a package.json with a "stem" key (or one that is not plain
 * JSON, for cosmiconfig to report).
 */
function hasConfigCandidate(cwd: string): boolean {
  return SEARCH_PLACES.some((place) => {
    const file = join(cwd, place);
    if (!existsSync(file)) return false;
    if (place !== 'package.json') return true;
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      return typeof parsed !== 'object' || parsed === null || 'stem' in parsed;
    } catch {
      return true;
    }
  });
}

async function readConfigFile(configFile: string | undefined, cwd: string): Promise<{ config: StemConfig; path?: string }> {
  // Nothing to find (`stem --help` outside a project, a package.json without "stem"): cosmiconfig is not even loaded.
  if (configFile === undefined && !hasConfigCandidate(cwd)) return { config: {} };
  // Imported on first use, not when the CLI starts: every command's module imports this one.
  const { cosmiconfig } = await import('cosmiconfig');
  const explorer = cosmiconfig('stem', {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'none',
    // TypeScript configs load through tsx, registered only for them (typescript-loader.ts), not cosmiconfig's own TS compiler.
    loaders: { '.ts': importModule, '.mts': importModule, '.js': importModule, '.mjs': importModule },
  });
  if (configFile !== undefined) {
    const file = resolve(cwd, configFile);
    if (!existsSync(file))
      throw new UsageError(`config file ${configFile} does not exist (resolved to ${file}); check --config or STEM_CONFIG`);
    try {
      const found = await explorer.load(file);
      return { config: (found?.config ?? {}) as StemConfig, path: file };
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`${configFile} could not be loaded: ${loadFailure(error)}`, { cause: error });
    }
  }
  let found;
  try {
    found = await explorer.search(cwd);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`the config file could not be loaded: ${loadFailure(error)}`, { cause: error });
  }
  return found ? { config: (found.config ?? {}) as StemConfig, path: found.filepath } : { config: {} };
}

/** The routing plugin for a routing file named by --routing-config or STEM_ROUTING_CONFIG. */
async function routingPluginFor(file: string): Promise<StemPlugin> {
  const { routing } = (await import('../../plugins/routing/index.js')) as { routing: (options: { file: string }) => StemPlugin };
  return routing({ file });
}

/** The signing plugin for STEM_SIGNING_KEYS (with STEM_SIGNING_ACTIVE_KEY, STEM_SIGNING_ALGORITHM), when it is set. */
async function signingPluginFromEnv(env: NodeJS.ProcessEnv): Promise<StemPlugin | undefined> {
  if (!env.STEM_SIGNING_KEYS?.trim()) return undefined;
  const { signing, signingOptionsFromEnv } = await import('../../plugins/signing/index.js');
  return signing(signingOptionsFromEnv(env)!);
}

/** The tasks of one source, each once; two different definitions of one name are a ConfigError naming the source. */
function distinctTasks(tasks: readonly TaskDefinition[], source: string): TaskDefinition[] {
  const byName = new Map<string, TaskDefinition>();
  for (const task of tasks) {
    const seen = byName.get(task.name);
    if (seen !== undefined && seen !== task) {
      throw new ConfigError(`${source} defines the task "${task.name}" twice with different handlers; keep one definition of each name`);
    }
    byName.set(task.name, task);
  }
  return [...byName.values()];
}

function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/**
 * Resolves the configuration exactly as the CLI does: stem.config.ts (found by cosmiconfig, or
 * `configFile`), then STEM_* variables, then flags. Service URLs become plugins chosen by scheme,
 * added after the file's plugins so that they win.
 *
 * @example const stem = await Stem.create(await loadConfig());
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const flags = options.overrides ?? {};
  // The stem binary turns --config into STEM_CONFIG, so project commands calling loadConfig() see it too.
  const configFile = options.configFile ?? (env.STEM_CONFIG || undefined);
  const { config: fileConfig, path } = await readConfigFile(configFile, cwd);
  if (typeof fileConfig !== 'object' || fileConfig === null) {
    throw new ConfigError(`${path ?? 'the config'} must export an object: export default defineConfig({ ... })`);
  }
  validateConfigShape(fileConfig, path ?? 'the config');

  const namespace = flags.namespace ?? env.STEM_CONTROL_NAMESPACE ?? fileConfig.namespace ?? 'stem';
  const urls: ResolvedConfig['urls'] = {};
  const pick = (flag: string | undefined, variable: string): [string, string] | undefined => {
    if (flag !== undefined)
      return [
        flag,
        `--${variable
          .replace(/^STEM_/, '')
          .toLowerCase()
          .replace(/_/g, '-')}`,
      ];
    const fromEnv = env[variable];
    return fromEnv !== undefined && fromEnv !== '' ? [fromEnv, variable] : undefined;
  };
  const broker = pick(flags.brokerUrl, 'STEM_BROKER_URL');
  // As in Celery, revokes (and schedules) live with the broker unless given a URL of their own:
  // every worker of the broker then sees them, and they outlive a restart.
  const sources: Array<[keyof ResolvedConfig['urls'], ServiceName[], [string, string] | undefined]> = [
    ['broker', ['broker', 'lockStore', 'rateLimiter'], broker],
    ['backend', ['backend'], pick(flags.backendUrl, 'STEM_RESULT_BACKEND_URL')],
    ['scheduleStore', ['scheduleStore'], pick(flags.scheduleStoreUrl, 'STEM_SCHEDULE_STORE_URL') ?? broker],
    ['revokeStore', ['revokeStore'], pick(flags.revokeStoreUrl, 'STEM_REVOKE_STORE_URL') ?? broker],
  ];
  const urlPlugins: StemPlugin[] = [];
  for (const [key, services, source] of sources) {
    if (source === undefined) continue;
    const [url, variable] = source;
    urls[key] = url;
    for (const service of services) {
      const plugin = await pluginForUrl(service, url, variable);
      if (plugin) urlPlugins.push(plugin);
    }
  }

  let tasks: TaskDefinition[] = [...(fileConfig.tasks ?? [])];
  if (flags.registry !== undefined) {
    // The flag wins: its tasks replace the file's tasks of the same name.
    const fromFlag = distinctTasks(await loadRegistryModule(flags.registry, cwd), `--registry ${flags.registry}`);
    const replaced = new Set(fromFlag.map((task) => task.name));
    tasks = [...tasks.filter((task) => !replaced.has(task.name)), ...fromFlag];
  }

  const worker = { ...fileConfig.worker };
  const queues = flags.queues ?? splitList(env.STEM_WORKER_QUEUES);
  if (queues) worker.queues = queues;
  const broadcasts = flags.broadcasts ?? splitList(env.STEM_WORKER_BROADCASTS);
  if (broadcasts) worker.broadcasts = broadcasts;
  const prefetch = flags.prefetchMultiplier ?? (env.STEM_PREFETCH_MULTIPLIER ? Number(env.STEM_PREFETCH_MULTIPLIER) : undefined);
  if (prefetch !== undefined) {
    if (!Number.isFinite(prefetch) || prefetch < 1)
      throw new UsageError(`STEM_PREFETCH_MULTIPLIER: ${JSON.stringify(env.STEM_PREFETCH_MULTIPLIER)} must be a number of 1 or more`);
    worker.prefetchMultiplier = prefetch;
  }

  // The operations plugins import the worker; loaded only once the config is known to be good.
  const { defaultOperationsPlugins } = await import('./operations-plugins.js');
  const resolved: ResolvedConfig = {
    ...fileConfig,
    // No broker URL: the zero-server default (SQLite in .stem/ of the project), unless a plugin of the file provides a broker.
    plugins: [
      ...(fileConfig.plugins ?? []),
      ...urlPlugins,
      ...(broker === undefined ? [defaultBrokerPlugin(path === undefined ? cwd : dirname(path))] : []),
      ...defaultOperationsPlugins(fileConfig.plugins ?? []),
    ],
    tasks,
    worker,
    urls,
    namespace,
  };
  const signingPlugin = await signingPluginFromEnv(env);
  if (signingPlugin) resolved.plugins = [...resolved.plugins!.filter((plugin) => plugin.name !== 'signing'), signingPlugin];
  const defaultQueue = flags.defaultQueue ?? env.STEM_DEFAULT_QUEUE;
  if (defaultQueue) resolved.defaultQueue = defaultQueue;
  const routingConfig = flags.routingConfig ?? env.STEM_ROUTING_CONFIG;
  if (routingConfig) {
    resolved.routingConfig = routingConfig;
    resolved.plugins!.push(await routingPluginFor(resolve(cwd, routingConfig)));
  }
  if (path !== undefined) resolved.configPath = path;
  return resolved;
}
