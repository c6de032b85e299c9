import { Command, Option } from 'clipanion';
import { ExitCode } from '../../../sdk/errors.js';
import { confirmDestructive } from '../../output/confirm.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem queues purge QUEUE`: delete waiting tasks. */
export class QueuesPurgeCommand extends ServiceCommand {
  static override paths = [['queues', 'purge']];
  static override usage = Command.Usage({
    category: 'Queues',
    description: "Delete a queue's waiting tasks (asks first; --yes to skip)",
    examples: [['Empty queue reports', '$0 queues purge reports --yes']],
  });

  queue = Option.String({ name: 'QUEUE' });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask' });

  async run(): Promise<number> {
    if (!(await confirmDestructive(this.context, this.yes, `Delete every waiting task of queue ${this.queue}?`))) return ExitCode.failure;
    return this.withStem(async (stem) => {
      this.context.stdout.write(`purged ${await stem.broker.purge(this.queue)} task(s) from ${this.queue}\n`);
      return 0;
    });
  }
}
