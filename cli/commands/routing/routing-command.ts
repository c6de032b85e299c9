import { Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import type { TaskDefinition } from '../../../sdk/task.js';
import type { RoutingPlugin, RoutingTable } from '../../../plugins/routing/index.js';
import type { ResolvedConfig } from '../../config/index.js';
import { StemCommand } from '../../stem-command.js';

/** What a routing command works on: the table, and the config it came with. */
export interface LoadedRouting {
  /** The resolved routing table. */
  table: RoutingTable;
  /** The config as the CLI resolved it (tasks, default queue). */
  config: ResolvedConfig;
}

function isRoutingPlugin(
  plugin: unknown,
  RoutingTable: typeof import('../../../plugins/routing/index.js').RoutingTable,
): plugin is RoutingPlugin {
  return (
    typeof plugin === 'object' &&
    plugin !== null &&
    (plugin as RoutingPlugin).name === 'routing' &&
    (plugin as RoutingPlugin).table instanceof RoutingTable
  );
}

/**
 * The base of `stem routing …`: finds the routing table the way a worker would (--routing-config,
 * STEM_ROUTING_CONFIG, or a routing() plugin in stem.config.ts) and prints as a table or JSON.
 */
export abstract class RoutingCommand extends StemCommand {
  /** The routing file. */
  routingConfig = Option.String('--routing-config', {
    description: 'The routing file (.yaml, .yml or .json); default: STEM_ROUTING_CONFIG',
  });
  /** A registry module whose tasks every glob must match. */
  registry = Option.String('--registry', {
    description: 'Also check that every glob matches one of the tasks of this module (and of the config)',
  });
  /** Print JSON instead of text. */
  json = Option.Boolean('--json', false, { description: 'Print JSON for scripts' });

  /** Loads the config and its routing table; a usage error when there is none. */
  protected async loadRouting(): Promise<LoadedRouting> {
    const config = await this.loadConfig({ routingConfig: this.routingConfig, registry: this.registry });
    const { RoutingTable } = await import('../../../plugins/routing/index.js');
    const plugin = [...(config.plugins ?? [])].reverse().find((candidate) => isRoutingPlugin(candidate, RoutingTable));
    if (plugin === undefined) {
      throw new UsageError(
        'no routing file: pass --routing-config routing.yaml, set STEM_ROUTING_CONFIG, or add routing({ file }) to the plugins of ' +
          'stem.config.ts',
      );
    }
    if (this.registry !== undefined) plugin.table.checkTasks((config.tasks ?? []).map((task: TaskDefinition) => task.name));
    return { table: plugin.table, config };
  }
}
