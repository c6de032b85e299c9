import { Command, Option } from 'clipanion';
import { parseDurationFlag, parseJsonFlag } from '../../parse-input.js';
import { WfCommand } from './wf-command.js';

/** `stem wf start NAME`: starts a run of a workflow of the config. */
export class WfStartCommand extends WfCommand {
  static override paths = [['wf', 'start']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'Start a run of a workflow; prints its run id (with --wait, its result)',
    examples: [
      ['Start an order run', `$0 wf start orders.fulfil --input '{"orderId":"o-1","amount":42}'`],
      ['Start one with a chosen id and wait up to 5 minutes for its result', '$0 wf start orders.fulfil --id order-o-1 --wait 5m'],
    ],
  });

  name = Option.String({ name: 'NAME' });
  input = Option.String('--input', { description: 'The run input as JSON (default {})' });
  id = Option.String('--id', { description: 'The run id (default: a new UUIDv7; an existing id starts nothing)' });
  wait = Option.String('--wait', { description: 'Wait this long (e.g. 30s) for the run to end and print its result' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const input = parseJsonFlag('--input', this.input) ?? {};
    const waitMs = parseDurationFlag('--wait', this.wait);
    return this.withWorkflows(async (workflows) => {
      const handle = await workflows.start(this.name, input, this.id === undefined ? {} : { id: this.id });
      if (waitMs === undefined) {
        if (this.json) this.printJson({ id: handle.id, created: handle.created });
        else this.context.stdout.write(`${handle.id}${handle.created ? '' : ' (already existed)'}\n`);
        return 0;
      }
      const result = await handle.result({ timeoutMs: waitMs });
      if (this.json) this.printJson({ id: handle.id, result });
      else this.context.stdout.write(`${handle.id}\n${JSON.stringify(result)}\n`);
      return 0;
    });
  }
}
