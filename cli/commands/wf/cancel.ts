import { Command, Option } from 'clipanion';
import { WfCommand } from './wf-command.js';

/** `stem wf cancel ID`: cancels a run. */
export class WfCancelCommand extends WfCommand {
  static override paths = [['wf', 'cancel']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'Cancel a workflow run: it never advances again (a step running now finishes, its result is dropped)',
    examples: [['Cancel a run', '$0 wf cancel 0190c2f4-… --reason "customer cancelled"']],
  });

  id = Option.String({ name: 'ID' });
  reason = Option.String('--reason', 'cancelled with stem wf cancel', { description: 'Why (kept as the run error)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    return this.withWorkflows(async (workflows) => {
      const run = await workflows.cancel(this.id, this.reason);
      if (this.json) this.printJson(run);
      else this.context.stdout.write(`${run.id} ${run.status}\n`);
      return 0;
    });
  }
}
