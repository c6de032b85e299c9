import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import type { ReplayOptions } from '../../../sdk/contracts/broker.js';
import { parseDurationFlag, parseIntegerFlag, parseListFlag } from '../../parse-input.js';
import { TtyProgress } from '../../output/progress.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem dlq replay`: put dead letters back on their queue. */
export class DlqReplayCommand extends ServiceCommand {
  static override paths = [['dlq', 'replay']];
  static override usage = Command.Usage({
    category: 'Dead letters',
    description: 'Publish dead letters back to their queue (attempts start again at 0)',
    examples: [
      ['See what would be replayed', '$0 dlq replay --queue emails --dry-run'],
      ['Replay the 100 oldest in 1 minute', '$0 dlq replay --queue emails --limit 100 --delay 1m'],
    ],
  });

  queue = Option.String('--queue', 'default', { description: 'The queue' });
  limit = Option.String('--limit', { description: 'At most this many (oldest first)' });
  ids = Option.String('--ids', { description: 'Only these comma-separated ids' });
  delay = Option.String('--delay', { description: 'Run them no earlier than this from now' });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Only show what would be replayed' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const options: ReplayOptions = { dryRun: this.dryRun };
    const limit = parseIntegerFlag('--limit', this.limit, 1);
    if (limit !== undefined) options.limit = limit;
    const ids = parseListFlag(this.ids);
    for (const id of ids ?? []) assertValidName('taskId', id);
    if (ids) options.ids = ids;
    const delayMs = parseDurationFlag('--delay', this.delay);
    if (delayMs !== undefined) options.delayMs = delayMs;
    return this.withStem(async (stem) => {
      const progress = new TtyProgress(this.context.stderr, `dlq ${this.queue}`);
      progress.update(this.dryRun ? 'reading dead letters…' : 'replaying dead letters…');
      const replayed = await stem.broker.replayDeadLetters(this.queue, options).finally(() => progress.done());
      if (this.json)
        this.printJson({
          dryRun: this.dryRun,
          replayed: replayed.map((entry) => ({ id: entry.id, task: entry.envelope?.name, reason: entry.reason })),
        });
      else
        this.context.stdout.write(
          `${this.dryRun ? 'would replay' : 'replayed'} ${replayed.length} dead letter(s) of ${this.queue}` +
            `${replayed.length > 0 ? `: ${replayed.map((entry) => entry.id).join(', ')}` : ''}\n`,
        );
      return 0;
    });
  }
}
