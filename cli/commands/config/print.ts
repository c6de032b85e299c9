import { Command, Option } from 'clipanion';
import { maskUrl } from '../../../sdk/url.js';
import { ServiceCommand } from '../../service-command.js';

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
      urls: { broker: 'memory', backend: 'memory', scheduleStore: 'memory', revokeStore: 'memory', ...urls },
      namespace: config.namespace,
      defaultQueue: config.defaultQueue ?? 'default',
      routingConfig: config.routingConfig ?? null,
      worker: config.worker ?? {},
      plugins: (config.plugins ?? []).map((plugin) => plugin.name),
      tasks: (config.tasks ?? []).map((task) => task.name),
    };
    if (this.json) this.printJson(view);
    else for (const [key, value] of Object.entries(view)) this.context.stdout.write(`${key.padEnd(14)}${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
    return 0;
  }
}
