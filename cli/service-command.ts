import { Option } from 'clipanion';
import type { Stem } from '../sdk/kernel.js';
import type { ConfigOverrides } from './config/index.js';
import { StemCommand } from './stem-command.js';

/**
 * The base of commands that talk to the broker and backend: the connection flags every such
 * command takes (`--broker`, `--backend`, `--registry`, `--routing-config`, `--namespace`).
 */
export abstract class ServiceCommand extends StemCommand {
  /** Broker URL (beats STEM_BROKER_URL). */
  broker = Option.String('--broker', {
    description: 'Broker URL (default: STEM_BROKER_URL, else a broker plugin of the config, else sqlite://.stem/stem.db)',
  });
  /** Result backend URL (beats STEM_RESULT_BACKEND_URL). */
  backend = Option.String('--backend', { description: 'Result backend URL (default: STEM_RESULT_BACKEND_URL)' });
  /** A module whose exported tasks are registered. */
  registry = Option.String('--registry', { description: 'A TS or JS module exporting task definitions' });
  /** A routing file (beats STEM_ROUTING_CONFIG). */
  routingConfig = Option.String('--routing-config', { description: 'Routing YAML or JSON (default: STEM_ROUTING_CONFIG)' });
  /** The control namespace (beats STEM_CONTROL_NAMESPACE). */
  namespace = Option.String('--namespace', { description: 'Control namespace (default: STEM_CONTROL_NAMESPACE, else stem)' });

  /** The overrides these flags make. */
  protected serviceOverrides(extra: ConfigOverrides = {}): ConfigOverrides {
    const overrides: ConfigOverrides = { ...extra };
    if (this.broker !== undefined) overrides.brokerUrl = this.broker;
    if (this.backend !== undefined) overrides.backendUrl = this.backend;
    if (this.registry !== undefined) overrides.registry = this.registry;
    if (this.routingConfig !== undefined) overrides.routingConfig = this.routingConfig;
    if (this.namespace !== undefined) overrides.namespace = this.namespace;
    return overrides;
  }

  /** Creates a Stem from the config and these flags, runs `body`, and closes it. */
  protected async withStem<T>(body: (stem: Stem) => Promise<T>, extra: ConfigOverrides = {}): Promise<T> {
    const stem = await this.createStem(this.serviceOverrides(extra));
    try {
      return await body(stem);
    } finally {
      await stem.close();
    }
  }

  /** Writes `value` as one JSON document. */
  protected printJson(value: unknown): void {
    this.context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }
}
