import { Command, Option } from 'clipanion';
import type { ConcurrencyKeyStats } from '../../../sdk/contracts/concurrency-control.js';
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
  /** With --keys: each concurrency key of the queue (docs/flow-control.md). */
  keys?: ConcurrencyKeyStats[];
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
      ['With the running and waiting tasks of each concurrency key', '$0 queues list --broker redis://localhost:6379 --keys'],
    ],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  all = Option.Boolean('--all', false, { description: 'Also list broadcast channels (the control channels included)' });
  keys = Option.Boolean('--keys', false, { description: 'Also list each concurrency key: running, waiting, limit' });

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
          ...(this.keys && broker.concurrency !== undefined ? { keys: await broker.concurrency.stats(queue) } : {}),
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
        const keyed = shown.flatMap((r) =>
          (r.keys ?? []).map((k) => [printable(r.queue), printable(k.key), k.running, k.waiting, k.limit]),
        );
        if (keyed.length > 0)
          this.context.stdout.write(`${renderTable(this.context.stdout, ['queue', 'key', 'running', 'waiting', 'limit'], keyed)}\n`);
        else if (this.keys) this.context.stdout.write('no concurrency keys\n');
        const left = queues.length - listed.length;
        if (left > 0) this.context.stdout.write(`${left} broadcast channel(s) not shown; --all lists them\n`);
      }
      return 0;
    });
  }
}
