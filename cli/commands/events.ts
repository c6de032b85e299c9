import { Command, Option } from 'clipanion';
import { STEM_EVENT_TYPES, type StemEvent, type StemEventType } from '../../sdk/contracts/event-bus.js';
import { UnsupportedCapabilityError, UsageError } from '../../sdk/errors.js';
import type { EventFilter } from '../../sdk/event-stream.js';
import { formatEventLine } from '../output/event-line.js';
import { parseListFlag } from '../parse-input.js';
import { ServiceCommand } from '../service-command.js';

/** `stem events`: a live tail of the task and worker events workers publish with `--events`. */
export class EventsCommand extends ServiceCommand {
  static override paths = [['events']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Show task and worker events live, one line each, until SIGINT or SIGTERM',
    details: `
      Prints the events that workers started with --events (or worker.events in the config) publish
      on the namespace's broker: Redis pub/sub or Postgres NOTIFY. Only events published while it
      listens are shown, and a reconnection can lose some: watch with it, never count on it.
    `,
    examples: [
      ['Tail every event', '$0 events'],
      ['One JSON object a line, failures of one task only', '$0 events --json --task send-invoice --type task-failed,task-retried'],
    ],
  });

  static valuePlaceholders = { '--task': '<name>', '--type': '<types>' };

  json = Option.Boolean('--json', false, { description: 'One JSON object a line' });
  task = Option.String('--task', { description: 'Only task events of this task name' });
  type = Option.String('--type', { description: `Comma-separated event types (${STEM_EVENT_TYPES.join(', ')})` });

  async run(): Promise<number> {
    const filter: EventFilter = {};
    const types = parseListFlag(this.type);
    if (types !== undefined) {
      const unknown = types.filter((type) => !STEM_EVENT_TYPES.includes(type as StemEventType));
      if (types.length === 0 || unknown.length > 0)
        throw new UsageError(`--type: "${this.type}" must name event types among ${STEM_EVENT_TYPES.join(', ')}`);
      filter.types = types as StemEventType[];
    }
    if (this.task !== undefined) filter.task = this.task;
    const stem = await this.createStem(this.serviceOverrides());
    try {
      if (!stem.provides('eventBus')) {
        if (stem.provides('broker')) {
          const name = stem.broker.constructor?.name?.replace(/Broker$/, '') || 'configured';
          throw new UnsupportedCapabilityError('events', name, 'stem events');
        }
        throw new UsageError(
          "stem events: the broker is memory://, which only this process sees; name the workers' broker with --broker redis://… " +
            'or postgres://…',
        );
      }
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        // Piped into a reader that went away (`stem events | head`): stop as on a signal.
        (this.context.stdout as NodeJS.WritableStream).once?.('error', () => resolve());
      });
      const write = (event: StemEvent): void => {
        this.context.stdout.write(this.json ? `${JSON.stringify(event)}\n` : `${formatEventLine(event)}\n`);
      };
      const stop = await stem.events.subscribe(write, filter);
      this.context.stderr.write(`stem: listening for events; Ctrl-C to stop\n`);
      await stopped;
      await stop();
      return 0;
    } finally {
      await stem.close();
    }
  }
}
