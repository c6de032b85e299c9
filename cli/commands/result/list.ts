import { Command, Option } from 'clipanion';
import type { TaskQuery, TaskState } from '../../../sdk/contracts/result-backend.js';
import { UsageError } from '../../../sdk/errors.js';
import { MAX_LIST_LIMIT } from '../../../sdk/task-listing.js';
import { renderTable } from '../../output/table.js';
import { parseDurationFlag, parseIntegerFlag, parseListFlag } from '../../parse-input.js';
import { ServiceCommand } from '../../service-command.js';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T|$)/;

/** A `--since`/`--until` value as epoch ms: an ISO time, or a duration back from now (`1h`: an hour ago). */
export function parseTimeFlag(flag: string, text: string | undefined, now: number): number | undefined {
  if (text === undefined) return undefined;
  if (ISO_TIME.test(text)) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a time; use an ISO time or a duration like 1h`);
    return ms;
  }
  return now - parseDurationFlag(flag, text)!;
}

/** The first line of an error message, cut to `max` characters, for a table cell. */
function cell(text: string | undefined, max = 60): string {
  const line = (text ?? '').split('\n', 1)[0]!;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** `stem result list`: stored tasks by state, name, queue and time, newest first, a page at a time. */
export class ResultListCommand extends ServiceCommand {
  static override paths = [['result', 'list']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: 'List stored tasks by state, name, queue and time, newest first (a page at a time: pass --cursor for the next)',
    details: `Reads the result backend's listing (memory, Redis, Postgres, SQLite). Only tasks whose results have not expired are listed.`,
    examples: [
      ['Failed tasks of the last hour', '$0 result list --state failed --since 1h'],
      ['Queued or running tasks of one queue, as JSON', '$0 result list --state queued,running --queue emails --json'],
      ['The next page', '$0 result list --state failed --cursor WzE3…'],
    ],
  });

  state = Option.String('--state', { description: 'Only tasks in this state (comma-separated for several)' });
  name = Option.String('--name', { description: 'Only tasks of this name' });
  queue = Option.String('--queue', { description: 'Only tasks of this queue' });
  since = Option.String('--since', { description: 'Only tasks updated since then: a duration back from now (1h) or an ISO time' });
  until = Option.String('--until', { description: 'Only tasks updated until then: a duration back from now or an ISO time' });
  limit = Option.String('--limit', '50', { description: `Tasks per page (at most ${MAX_LIST_LIMIT})` });
  cursor = Option.String('--cursor', { description: 'The cursor a previous page printed' });
  json = Option.Boolean('--json', false, { description: 'Print JSON: { tasks, cursor }' });

  async run(): Promise<number> {
    const now = Date.now();
    const query: TaskQuery = { limit: parseIntegerFlag('--limit', this.limit, 1, MAX_LIST_LIMIT)! };
    const states = parseListFlag(this.state);
    if (states !== undefined && states.length > 0) query.state = states as TaskState[];
    if (this.name !== undefined) query.name = this.name;
    if (this.queue !== undefined) query.queue = this.queue;
    const since = parseTimeFlag('--since', this.since, now);
    if (since !== undefined) query.since = since;
    const until = parseTimeFlag('--until', this.until, now);
    if (until !== undefined) query.until = until;
    if (this.cursor !== undefined) query.cursor = this.cursor;
    return this.withStem(async (stem) => {
      const page = await stem.listTasks(query);
      if (this.json) {
        this.printJson(page);
        return 0;
      }
      const rows = page.tasks.map((task) => [
        task.id,
        task.name ?? '?',
        task.queue ?? '',
        task.state,
        task.attempt,
        new Date(task.updatedAt).toISOString(),
        cell(task.error?.message),
      ]);
      const more = page.cursor === undefined ? '' : `; next page: --cursor ${page.cursor}`;
      this.context.stdout.write(
        `${renderTable(this.context.stdout, ['id', 'task', 'queue', 'state', 'attempt', 'updated', 'error'], rows)}\n` +
          `${page.tasks.length} task(s)${more}\n`,
      );
      return 0;
    });
  }
}
