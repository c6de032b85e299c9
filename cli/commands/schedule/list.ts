import { Command, Option } from 'clipanion';
import type { ScheduleEntry } from '../../../sdk/contracts/schedule-store.js';
import { printable } from '../../output/printable.js';
import { renderTable } from '../../output/table.js';
import { ScheduleStoreCommand } from './schedule-store-command.js';

function iso(ms: number | undefined): string | null {
  return ms === undefined || ms === null ? null : new Date(ms).toISOString();
}

/** An entry for scripts: the stored fields, with times as ISO strings. */
function entryJson(entry: ScheduleEntry): Record<string, unknown> {
  return {
    ...entry,
    nextRunAt: iso(entry.nextRunAt),
    lastRunAt: iso(entry.lastRunAt),
    startAt: iso(entry.startAt) ?? undefined,
    endAt: iso(entry.endAt) ?? undefined,
    totalRuns: entry.totalRuns ?? 0,
  };
}

/** `stem schedule list`: the entries of the schedule store. */
export class ScheduleListCommand extends ScheduleStoreCommand {
  static override paths = [['schedule', 'list']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'List the schedule entries',
    details: `
      Shows each entry's id, task, schedule, next run, last run, whether it is enabled and how often
      it fired. \`--json\` prints the stored entries, with times as ISO strings (null when unset).
    `,
    examples: [
      ['List the entries on Redis', '$0 schedule list --store redis://127.0.0.1:6379'],
      ['As JSON for scripts', 'STEM_SCHEDULE_STORE_URL=redis://127.0.0.1:6379 $0 schedule list --json'],
    ],
  });

  /** Print JSON. */
  json = Option.Boolean('--json', false, { description: 'Print the entries as JSON' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      // A memory store is always empty here: say why, or "no entries" would read as the truth.
      this.warnIfMemory(stem);
      const entries = await stem.service('scheduleStore').list();
      const { describeSchedule } = await import('../../../plugins/beat/schedule-rules.js');
      if (this.json) {
        this.context.stdout.write(`${JSON.stringify(entries.map(entryJson), null, 2)}\n`);
        return 0;
      }
      if (entries.length === 0) {
        this.context.stdout.write('no schedule entries; add some with `stem schedule apply FILE`\n');
        return 0;
      }
      const rows = entries.map((entry) => [
        printable(entry.id),
        printable(entry.task),
        describeSchedule(entry.schedule, entry.timezone),
        entry.enabled ? (iso(entry.nextRunAt) ?? '-') : '-',
        iso(entry.lastRunAt) ?? '-',
        entry.enabled ? 'yes' : 'no',
        entry.totalRuns ?? 0,
      ]);
      this.context.stdout.write(
        `${renderTable(this.context.stdout, ['id', 'task', 'schedule', 'next run', 'last run', 'enabled', 'runs'], rows)}\n`,
      );
      return 0;
    });
  }
}
