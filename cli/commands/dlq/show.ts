import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import { StemError } from '../../../sdk/errors.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem dlq show ID`: one dead letter whole. */
export class DlqShowCommand extends ServiceCommand {
  static override paths = [['dlq', 'show']];
  static override usage = Command.Usage({
    category: 'Dead letters',
    description: 'Show one dead letter: reason, error, envelope',
    examples: [['Show a dead letter of queue default', '$0 dlq show 0190c2f4-… --queue default']],
  });

  id = Option.String({ name: 'ID' });
  queue = Option.String('--queue', 'default', { description: 'The queue' });

  async run(): Promise<number> {
    assertValidName('taskId', this.id);
    return this.withStem(async (stem) => {
      const entry = await stem.broker.getDeadLetter(this.queue, this.id);
      if (entry === null)
        throw new StemError(
          'not-found',
          `no dead letter ${this.id} in queue ${this.queue}; list them with stem dlq list --queue ${this.queue}`,
        );
      this.printJson(entry);
      return 0;
    });
  }
}
