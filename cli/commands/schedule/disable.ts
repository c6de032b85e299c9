import { Command, Option } from 'clipanion';
import { ScheduleStoreCommand } from './schedule-store-command.js';

/** `stem schedule disable ID`: the entry is kept but never due. */
export class ScheduleDisableCommand extends ScheduleStoreCommand {
  static override paths = [['schedule', 'disable']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Disable a schedule entry (kept, but not fired)',
    details: 'A disabled entry stays in the store and survives `stem schedule apply` of a file that does not set `enabled`.',
    examples: [['Pause the nightly report', '$0 schedule disable nightly-report --store redis://127.0.0.1:6379']],
  });

  /** The entry id. */
  id = Option.String({ name: 'id' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const { ScheduleEditor } = await import('../../../plugins/beat/index.js');
      const entry = await new ScheduleEditor(stem.service('scheduleStore')).setEnabled(this.id, false);
      this.context.stdout.write(`disabled ${entry.id}\n`);
      return 0;
    });
  }
}
