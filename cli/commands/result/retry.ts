import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem result retry ID`: runs a failed or cancelled task again under its id. */
export class ResultRetryCommand extends ServiceCommand {
  static override paths = [['result', 'retry']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: 'Run a failed or cancelled task again under the same id (from its dead letter, or the envelope its state recorded)',
    details:
      'The task starts over at attempt 0 of a new generation; its dead letter, if it has one, is taken off ' + "the queue's dead letters.",
    examples: [['Retry a failed task', '$0 result retry 0190c2f4-…']],
  });

  id = Option.String({ name: 'ID' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    assertValidName('taskId', this.id);
    return this.withStem(async (stem) => {
      const handle = await stem.retry(this.id);
      if (this.json) this.printJson({ id: handle.id, task: handle.name, queue: handle.queue, retried: true });
      else this.context.stdout.write(`retried ${handle.id} (${handle.name} on ${handle.queue})\n`);
      return 0;
    });
  }
}
