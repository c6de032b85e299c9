import { Command, Option } from 'clipanion';
import { WfCommand } from './wf-command.js';

/** `stem wf rewind ID STEP`: re-runs a run from a named step. */
export class WfRewindCommand extends WfCommand {
  static override paths = [['wf', 'rewind']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'Re-run a workflow run from a named step: its checkpoint and every later one are dropped, and the run advances again',
    examples: [['Ship order run again', '$0 wf rewind 0190c2f4-… ship']],
  });

  id = Option.String({ name: 'ID' });
  step = Option.String({ name: 'STEP' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    return this.withWorkflows(async (workflows) => {
      const run = await workflows.rewind(this.id, this.step);
      if (this.json) this.printJson(run);
      else this.context.stdout.write(`${run.id} rewound to ${this.step} (rewind ${run.rewinds})\n`);
      return 0;
    });
  }
}
