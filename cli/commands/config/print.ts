import { Command, Option } from 'clipanion';
import type { StemPlugin } from '../../../sdk/plugin.js';
import { maskUrl } from '../../../sdk/url.js';
import { ServiceCommand } from '../../service-command.js';
import { DEFAULT_BROKER_URL, findDefaultBroker } from '../../config/default-broker.js';

type PrintedService = 'broker' | 'backend' | 'scheduleStore' | 'revokeStore';

/**
 * The services of the plugins Stem ships, by plugin name: a plugin provides its services when
 * applied, which opens connections, and printing the config must not connect to anything.
 */
const SHIPPED_PLUGIN_SERVICES: Record<string, readonly PrintedService[]> = {
  redis: ['broker', 'backend', 'scheduleStore', 'revokeStore'],
  postgres: ['broker', 'backend', 'scheduleStore', 'revokeStore'],
  'redis-broker': ['broker'],
  'postgres-broker': ['broker'],
  'redis-result-backend': ['backend'],
  'postgres-result-backend': ['backend'],
  'redis-schedule-store': ['scheduleStore'],
  'postgres-schedule-store': ['scheduleStore'],
  'redis-revoke-store': ['revokeStore'],
  'postgres-revoke-store': ['revokeStore'],
  sqlite: ['broker', 'backend', 'scheduleStore', 'revokeStore'],
  'sqlite-broker': ['broker'],
  'sqlite-result-backend': ['backend'],
  'sqlite-schedule-store': ['scheduleStore'],
  'sqlite-revoke-store': ['revokeStore'],
};

/** Where each service comes from when no URL names it: the last config plugin that provides it, else memory. */
function pluginServices(plugins: readonly StemPlugin[]): Record<PrintedService, string> {
  const where: Record<PrintedService, string> = { broker: 'memory', backend: 'memory', scheduleStore: 'memory', revokeStore: 'memory' };
  for (const plugin of plugins) for (const service of SHIPPED_PLUGIN_SERVICES[plugin?.name] ?? []) where[service] = `plugin ${plugin.name}`;
  // No broker configured: the CLI's zero-server default serves what nothing else does.
  const fallback = findDefaultBroker(plugins);
  if (fallback !== undefined && where.broker === 'memory') {
    for (const service of Object.keys(where) as PrintedService[])
      if (where[service] === 'memory') where[service] = `${DEFAULT_BROKER_URL} (default, ${fallback.file})`;
  }
  return where;
}

/** `stem config print`: the resolved configuration, passwords masked. */
export class ConfigPrintCommand extends ServiceCommand {
  static override paths = [['config', 'print']];
  static override usage = Command.Usage({
    category: 'Operations',
    description: 'Print the configuration as resolved from the file, STEM_* variables and flags (passwords masked)',
    examples: [['As JSON', '$0 config print --json']],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const config = await this.loadConfig(this.serviceOverrides());
    const urls = Object.fromEntries(Object.entries(config.urls).map(([key, url]) => [key, maskUrl(url!)]));
    const view = {
      configFile: config.configPath ?? null,
      // A URL (flag or STEM_* variable) beats the file's plugins, as loadConfig applies it after them.
      urls: { ...pluginServices(config.plugins ?? []), ...urls },
      namespace: config.namespace,
      defaultQueue: config.defaultQueue ?? 'default',
      routingConfig: config.routingConfig ?? null,
      worker: config.worker ?? {},
      plugins: (config.plugins ?? []).map((plugin) => plugin.name),
      tasks: (config.tasks ?? []).map((task) => task.name),
    };
    if (this.json) this.printJson(view);
    else
      for (const [key, value] of Object.entries(view))
        this.context.stdout.write(`${key.padEnd(14)}${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
    return 0;
  }
}
