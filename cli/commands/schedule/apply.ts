import { resolve } from 'node:path';
import { Command, Option } from 'clipanion';
import type { describeSchedule as DescribeSchedule } from '../../../plugins/beat/schedule-rules.js';
import type { SchedulePlan } from '../../../plugins/beat/index.js';
import { ScheduleStoreCommand } from './schedule-store-command.js';

/** The plan as lines for people: one per entry, then a summary. */
function describePlan(plan: SchedulePlan, dryRun: boolean, describeSchedule: typeof DescribeSchedule): string {
  const lines: string[] = [];
  for (const definition of plan.added)
    lines.push(`+ added      ${definition.id}  ${definition.task}  ${describeSchedule(definition.schedule, definition.timezone)}`);
  for (const change of plan.changed) {
    const fields = change.fields.map(
      (field) =>
        `${field}: ${JSON.stringify(change.before[field as keyof typeof change.before] ?? null)} → ` +
        `${JSON.stringify(change.after[field as keyof typeof change.after] ?? null)}`,
    );
    lines.push(`~ changed    ${change.id}  ${fields.join(', ')}`);
  }
  for (const entry of plan.removed)
    lines.push(`- removed    ${entry.id}  ${entry.task}  ${describeSchedule(entry.schedule, entry.timezone)}`);
  for (const id of plan.unchanged) lines.push(`= unchanged  ${id}`);
  for (const id of plan.kept) lines.push(`  kept       ${id}  (not in the file; --prune removes it)`);
  const counts =
    `${plan.added.length} added, ${plan.changed.length} changed, ${plan.removed.length} removed, ` +
    `${plan.unchanged.length} unchanged, ${plan.kept.length} kept`;
  lines.push(dryRun ? `dry run: ${counts}; nothing was written` : `applied: ${counts}`);
  return `${lines.join('\n')}\n`;
}

/** `stem schedule apply FILE`: makes the store's entries match a JSON or YAML schedule file. */
export class ScheduleApplyCommand extends ScheduleStoreCommand {
  static override paths = [['schedule', 'apply']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Add and update schedule entries from a JSON or YAML file',
    details: `
      The file is a list of entries, or \`{ schedules: [...] }\`; each entry has \`id\`, \`task\` and
      \`schedule\` (a cron expression with 5 or 6 fields, \`every:30s\`, \`{ every: ms }\` or \`{ at: ISO }\`),
      and optionally \`args\`, \`headers\`, \`queue\`, \`priority\`, \`enabled\`, \`jitterMs\`, \`timezone\`,
      \`startAt\`, \`endAt\`. Every entry is checked first: if any is wrong, nothing is written.
      Entries in the store but not in the file are kept unless \`--prune\` is given. An entry whose
      \`enabled\` the file leaves out keeps its state in the store. \`--dry-run\` prints the changes
      (added, changed, removed) and writes nothing.
    `,
    examples: [
      ['Preview the changes of a file', '$0 schedule apply schedules.json --dry-run --store redis://127.0.0.1:6379'],
      [
        'Apply it, removing entries the file no longer has',
        '$0 schedule apply config/schedules.yaml --prune --store redis://127.0.0.1:6379',
      ],
    ],
  });

  /** The schedule file. */
  file = Option.String({ name: 'file' });
  /** Show the changes without writing. */
  dryRun = Option.Boolean('--dry-run', false, { description: 'Print the changes and write nothing' });
  /** Remove stored entries the file does not have. */
  prune = Option.Boolean('--prune', false, { description: 'Remove entries that are in the store but not in the file' });
  /** Print the plan as JSON. */
  json = Option.Boolean('--json', false, { description: 'Print the changes as JSON' });

  async run(): Promise<number> {
    // Loaded here, not at start-up: the beat plugin brings cron-parser and the YAML parser.
    const [{ describeSchedule }, { readScheduleFile, ScheduleEditor }] = await Promise.all([
      import('../../../plugins/beat/schedule-rules.js'),
      import('../../../plugins/beat/index.js'),
    ]);
    const definitions = await readScheduleFile(resolve(this.file), { displayName: this.file });
    return this.withStem(async (stem) => {
      const registry = stem.registry;
      if (registry.size > 0) {
        for (const definition of definitions) {
          if (registry.find(definition.task) === undefined && !definition.task.startsWith('broadcast://')) {
            this.context.stderr.write(
              `stem: note: ${this.file}: entry "${definition.id}": task "${definition.task}" is not registered in this config; ` +
                `workers must know it\n`,
            );
          }
        }
      }
      const editor = new ScheduleEditor(stem.service('scheduleStore'));
      const plan = await editor.plan(definitions, { prune: this.prune });
      if (!this.dryRun) {
        this.warnIfMemory(stem);
        await editor.apply(plan);
      }
      if (this.json) {
        this.context.stdout.write(
          `${JSON.stringify(
            {
              dryRun: this.dryRun,
              added: plan.added.map((definition) => definition.id),
              changed: plan.changed.map((change) => ({ id: change.id, fields: change.fields })),
              removed: plan.removed.map((entry) => entry.id),
              unchanged: plan.unchanged,
              kept: plan.kept,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        this.context.stdout.write(describePlan(plan, this.dryRun, describeSchedule));
      }
      return 0;
    });
  }
}
