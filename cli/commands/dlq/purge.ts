import { Command, Option } from 'clipanion';
import { ExitCode } from '../../../sdk/errors.js';
import { confirmDestructive } from '../../output/confirm.js';
import { parseListFlag } from '../../parse-input.js';
import { TtyProgress } from '../../output/progress.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem dlq purge`: delete dead letters. */
export class DlqPurgeCommand extends ServiceCommand {
  static override paths = [['dlq', 'purge']];
  static override usage = Command.Usage({
    category: 'Dead letters',
    description: "Delete a queue's dead letters (asks first; --yes to skip)",
    examples: [['Delete all dead letters of queue emails', '$0 dlq purge --queue emails --yes']],
  });

  queue = Option.String('--queue', 'default', { description: 'The queue' });
  ids = Option.String('--ids', { description: 'Only these comma-separated ids' });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask' });

  async run(): Promise<number> {
    if (!(await confirmDestructive(this.context, this.yes, `Delete the dead letters of queue ${this.queue}?`))) return ExitCode.failure;
    const ids = parseListFlag(this.ids);
    return this.withStem(async (stem) => {
      const progress = new TtyProgress(this.context.stderr, `dlq ${this.queue}`);
      progress.update('purging dead letters…');
      const purged = await stem.broker.purgeDeadLetters(this.queue, ids ? { ids } : {}).finally(() => progress.done());
      this.context.stdout.write(`purged ${purged} dead letter(s) of ${this.queue}\n`);
      return 0;
    });
  }
}
