import type { Workflows } from '../../../plugins/workflows/index.js';
import type { Stem } from '../../../sdk/kernel.js';
import { ServiceCommand } from '../../service-command.js';

/**
 * The base of `stem wf …`: a Stem from the config (whose plugins must include
 * `workflows({ definitions })` and a workflow store: redis(), postgres()), and its workflow operations.
 */
export abstract class WfCommand extends ServiceCommand {
  /** Creates a Stem, runs `body` with its workflow operations, and closes it. */
  protected withWorkflows<T>(body: (workflows: Workflows, stem: Stem) => Promise<T>): Promise<T> {
    return this.withStem(async (stem) => {
      // Loaded on use, as the kernel is: `stem --help` loads no plugin.
      const { workflowsOf } = await import('../../../plugins/workflows/index.js');
      return body(workflowsOf(stem), stem);
    });
  }
}

/** An epoch ms as an ISO time, or '' when absent. */
export function isoTime(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}
