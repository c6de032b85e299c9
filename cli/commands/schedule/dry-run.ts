import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import { StemCommand } from '../../stem-command.js';

/** Wall-clock time of `ms` in `timezone`, as `2030-01-01 09:00:00`. */
function localTime(ms: number, timezone: string): string {
  return new Intl.DateTimeFormat('sv-SE', {
    timeZone: timezone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).format(ms);
}

/** `stem schedule dry-run --spec SPEC`: the next firings of a schedule, without a store. */
export class ScheduleDryRunCommand extends StemCommand {
  static override paths = [['schedule', 'dry-run']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Print the next firings of a schedule spec',
    details: `
      \`--spec\` is a cron expression (5 fields, or 6 with seconds first), or every:30s. Cron is read in
      UTC unless \`--timezone\` names an IANA zone. \`--from\` starts from another time than now.
    `,
    examples: [
      ['Every five minutes', "$0 schedule dry-run --spec '*/5 * * * *' --count 5"],
      ['Weekdays at 9:00 in Paris', "$0 schedule dry-run --spec '0 9 * * 1-5' --timezone Europe/Paris --count 3"],
    ],
  });

  /** The schedule spec. */
  spec = Option.String('--spec', { required: true, description: "A cron expression ('*/5 * * * *') or every:30s" });
  /** How many firings. */
  count = Option.String('--count', '5', { description: 'How many firings to print (default 5)' });
  /** IANA zone of a cron expression. */
  timezone = Option.String('--timezone', { description: 'IANA time zone of the cron expression (default UTC)' });
  /** Start time. */
  from = Option.String('--from', { description: 'Start from this ISO time instead of now' });
  /** Print JSON. */
  json = Option.Boolean('--json', false, { description: 'Print the firings as a JSON list of ISO times' });

  async run(): Promise<number> {
    const count = Number(this.count);
    if (!Number.isInteger(count) || count < 1 || count > 1000)
      throw new UsageError(`--count: ${JSON.stringify(this.count)} must be a whole number from 1 to 1000`);
    const { InvalidScheduleError, parseScheduleSpec, parseScheduleTime, upcomingRuns } = await import(
      '../../../plugins/beat/schedule-rules.js'
    );
    const from = this.from === undefined ? Date.now() : parseScheduleTime(this.from, '--from');
    let rule;
    try {
      rule = parseScheduleSpec(this.spec.trim().startsWith('{') ? parseJsonSpec(this.spec) : this.spec, this.timezone);
    } catch (error) {
      if (!(error instanceof InvalidScheduleError)) throw error;
      throw new UsageError(`${error.field === 'timezone' ? '--timezone' : '--spec'}: ${error.problem}`);
    }
    const runs = upcomingRuns(rule, from, count);
    if (this.json) {
      this.context.stdout.write(`${JSON.stringify(runs.map((ms) => new Date(ms).toISOString()))}\n`);
      return 0;
    }
    if (runs.length === 0) this.context.stdout.write('no firings after that time\n');
    for (const ms of runs) {
      const local = this.timezone === undefined ? '' : `  ${localTime(ms, this.timezone)} ${this.timezone}`;
      this.context.stdout.write(`${new Date(ms).toISOString()}${local}\n`);
    }
    return 0;
  }
}

function parseJsonSpec(spec: string): unknown {
  try {
    return JSON.parse(spec);
  } catch {
    throw new UsageError(`--spec: ${spec} is not valid JSON; write {"every": 30000} or {"at": "2030-01-01T09:00:00Z"}`);
  }
}
