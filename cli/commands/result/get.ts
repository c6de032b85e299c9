import { Command, Option } from 'clipanion';
import { ServiceCommand } from '../../service-command.js';
import { printStatus } from './print-status.js';

/** `stem result get ID`: a task's current status. */
export class ResultGetCommand extends ServiceCommand {
  static override paths = [['result', 'get']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: "Show a task's state, result or error",
    examples: [['Read a task from the Redis backend', '$0 result get 0190c2f4-… --backend redis://localhost:6379/1 --json']],
  });

  id = Option.String({ name: 'ID' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const status = await stem.status(this.id);
      printStatus(this.context.stdout, status, this.json);
      return 0;
    });
  }
}
