import { Command, Option } from 'clipanion';
import { ScheduleStoreCommand } from './schedule-store-command.js';

/** `stem schedule enable ID`: the entry fires again, from its next slot (missed slots are not caught up). */
export class ScheduleEnableCommand extends ScheduleStoreCommand {
  static override paths = [['schedule', 'enable']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Enable a schedule entry',
    details: 'The entry fires again from its next slot after now; slots that passed while it was disabled are not caught up.',
    examples: [['Enable the nightly report', '$0 schedule enable nightly-report --store redis://127.0.0.1:6379']],
  });

  /** The entry id. */
  id = Option.String({ name: 'id' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const { ScheduleEditor } = await import('../../../plugins/beat/index.js');
      const entry = await new ScheduleEditor(stem.service('scheduleStore')).setEnabled(this.id, true);
      const next = entry.nextRunAt === undefined ? 'it will not fire again' : `next run ${new Date(entry.nextRunAt).toISOString()}`;
      this.context.stdout.write(`enabled ${entry.id} (${next})\n`);
      return 0;
    });
  }
}
