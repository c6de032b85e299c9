import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import { ServiceCommand } from '../../service-command.js';
import { printStatus } from './print-status.js';

/** `stem result get ID`: a task's current status; for a group or chord id, its members too. */
export class ResultGetCommand extends ServiceCommand {
  static override paths = [['result', 'get']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: "Show a task's state, result or error; for a group or chord id, each member's id, task and state",
    examples: [
      ['Read a task from the Redis backend', '$0 result get 0190c2f4-… --backend redis://localhost:6379/1 --json'],
      ['List the members of a chord (its id is also its group id)', '$0 result get 0190c2f4-… --backend redis://localhost:6379/1'],
    ],
  });

  id = Option.String({ name: 'ID' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    assertValidName('taskId', this.id);
    return this.withStem(async (stem) => {
      // A chord's id is also its body's group id; a plain group has no status record of its own.
      // The canvas plugin loads here, not when the CLI starts.
      const { readGroupResult } = await import('../../../plugins/canvas/index.js');
      const [status, group] = await Promise.all([stem.status(this.id), readGroupResult(stem.backend, this.id)]);
      printStatus(this.context.stdout, status, this.json, group);
      return 0;
    });
  }
}
