import { createInterface } from 'node:readline/promises';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import { ScheduleStoreCommand } from './schedule-store-command.js';

/** `stem schedule remove ID`: deletes an entry, after `--yes` or a confirmation on a terminal. */
export class ScheduleRemoveCommand extends ScheduleStoreCommand {
  static override paths = [['schedule', 'remove']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Remove a schedule entry',
    details: 'Asks for confirmation on a terminal; elsewhere (scripts, CI) `--yes` is required.',
    examples: [
      ['Remove an entry, asking first', '$0 schedule remove nightly-report --store redis://127.0.0.1:6379'],
      ['Remove it from a script', '$0 schedule remove nightly-report --yes --store redis://127.0.0.1:6379'],
    ],
  });

  /** The entry id. */
  id = Option.String({ name: 'id' });
  /** Skip the confirmation. */
  yes = Option.Boolean('--yes,-y', false, { description: 'Remove without asking' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const [{ describeSchedule }, { ScheduleEditor }] = await Promise.all([
        import('../../../plugins/beat/schedule-rules.js'),
        import('../../../plugins/beat/index.js'),
      ]);
      const editor = new ScheduleEditor(stem.service('scheduleStore'));
      const entry = await editor.get(this.id);
      if (!this.yes) {
        const stdin = this.context.stdin as NodeJS.ReadStream;
        if (!stdin.isTTY)
          throw new UsageError(`schedule remove ${this.id}: removing needs confirmation; pass --yes (no terminal to ask on)`);
        const prompt = createInterface({ input: stdin, output: this.context.stdout });
        const answer = await prompt.question(
          `Remove schedule entry "${entry.id}" (${entry.task}, ${describeSchedule(entry.schedule, entry.timezone)})? [y/N] `,
        );
        prompt.close();
        if (!/^y(es)?$/i.test(answer.trim())) {
          this.context.stdout.write('not removed\n');
          return 1;
        }
      }
      await editor.remove(this.id);
      this.context.stdout.write(`removed ${entry.id}\n`);
      return 0;
    });
  }
}
