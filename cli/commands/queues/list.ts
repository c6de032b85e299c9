import { Command, Option } from 'clipanion';
import { isBroadcastAddress } from '../../../sdk/envelope.js';
import { printable } from '../../output/printable.js';
import { renderTable } from '../../output/table.js';
import { ServiceCommand } from '../../service-command.js';

/** One row of `stem queues list`. */
interface QueueRow {
  queue: string;
  pending: number;
  inflight: number;
  dead: number;
}

/** `stem queues list`: every queue with its counts. */
export class QueuesListCommand extends ServiceCommand {
  static override paths = [['queues', 'list']];
  static override usage = Command.Usage({
    category: 'Queues',
    description: 'List queues with waiting, running and dead-letter counts',
    details: `
      Lists the queues the broker knows. Broadcast channels are left out: a broadcast is not a
      queue but a message for every worker subscribed when it is sent, the broker keeps it for them
      after it ran, and the control channels (\`broadcast://stem.control\` and its replies) are
      Stem's own. \`--all\` lists them too.
    `,
    examples: [
      ['On Redis, as JSON', '$0 queues list --broker redis://localhost:6379 --json'],
      ['Include the broadcast channels', '$0 queues list --broker redis://localhost:6379 --all'],
    ],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  all = Option.Boolean('--all', false, { description: 'Also list broadcast channels (the control channels included)' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const broker = stem.broker;
      const queues = await broker.listQueues();
      const listed = this.all ? queues : queues.filter((queue) => !isBroadcastAddress(queue));
      const shown: QueueRow[] = await Promise.all(
        listed.map(async (queue) => ({
          queue,
          pending: await broker.pending(queue),
          inflight: await broker.inflight(queue),
          dead: (await broker.listDeadLetters(queue, { limit: 1 })).total,
        })),
      );
      if (this.json) this.printJson(shown);
      else {
        this.context.stdout.write(
          `${renderTable(
            this.context.stdout,
            ['queue', 'pending', 'inflight', 'dead'],
            shown.map((r) => [printable(r.queue), r.pending, r.inflight, r.dead]),
          )}\n`,
        );
        const left = queues.length - listed.length;
        if (left > 0) this.context.stdout.write(`${left} broadcast channel(s) not shown; --all lists them\n`);
      }
      return 0;
    });
  }
}
