import { Command, Option } from 'clipanion';
import { renderTable } from '../../output/table.js';
import { parseIntegerFlag } from '../../parse-input.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem dlq list`: dead letters of a queue. */
export class DlqListCommand extends ServiceCommand {
  static override paths = [['dlq', 'list']];
  static override usage = Command.Usage({
    category: 'Dead letters',
    description: "List a queue's dead letters with their reasons",
    examples: [['The 20 oldest of queue emails', '$0 dlq list --queue emails --limit 20']],
  });

  queue = Option.String('--queue', 'default', { description: 'The queue' });
  limit = Option.String('--limit', '50', { description: 'At most this many' });
  offset = Option.String('--offset', '0', { description: 'Skip this many' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const limit = parseIntegerFlag('--limit', this.limit, 1)!;
    const offset = parseIntegerFlag('--offset', this.offset, 0)!;
    return this.withStem(async (stem) => {
      const page = await stem.broker.listDeadLetters(this.queue, { limit, offset });
      if (this.json) {
        this.printJson(page);
        return 0;
      }
      const rows = page.entries.map((entry) => [
        entry.id,
        entry.envelope?.name ?? '?',
        entry.reason,
        new Date(entry.deadAt).toISOString(),
        String((entry.meta.error as { message?: string } | undefined)?.message ?? ''),
      ]);
      this.context.stdout.write(
        `${renderTable(this.context.stdout, ['id', 'task', 'reason', 'dead at', 'error'], rows)}\n${page.entries.length} of ` +
          `${page.total} dead letters in ${this.queue}\n`,
      );
      return 0;
    });
  }
}
