import { Command, Option } from 'clipanion';
import { parseJsonFlag } from '../../parse-input.js';
import { WfCommand } from './wf-command.js';

/** `stem wf emit NAME KEY`: emits a workflow event. */
export class WfEmitCommand extends WfCommand {
  static override paths = [['wf', 'emit']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'Emit an event to the runs waiting on (NAME, KEY); with none waiting it is kept for the first that waits',
    examples: [['Tell order o-1 its payment came', `$0 wf emit payment o-1 --payload '{"paid":true}'`]],
  });

  name = Option.String({ name: 'NAME' });
  key = Option.String({ name: 'KEY' });
  payload = Option.String('--payload', { description: 'The payload as JSON (default null)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const payload = parseJsonFlag('--payload', this.payload) ?? null;
    return this.withWorkflows(async (workflows) => {
      const runs = await workflows.emit(this.name, this.key, payload);
      if (this.json) this.printJson({ delivered: runs });
      else
        this.context.stdout.write(
          runs.length === 0 ? 'no run waits for it: buffered for the first that does\n' : `delivered to ${runs.join(', ')}\n`,
        );
      return 0;
    });
  }
}
