import { Command, Option } from 'clipanion';
import { renderTable } from '../../output/table.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem queues list`: every queue with its counts. */
export class QueuesListCommand extends ServiceCommand {
  static override paths = [['queues', 'list']];
  static override usage = Command.Usage({
    category: 'Queues',
    description: 'List queues with waiting, running and dead-letter counts',
    examples: [['On Redis, as JSON', '$0 queues list --broker redis://localhost:6379 --json']],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    return this.withStem(async (stem) => {
      const broker = stem.broker;
      const queues = await broker.listQueues();
      const rows = await Promise.all(
        queues.map(async (queue) => ({ queue, pending: await broker.pending(queue), inflight: await broker.inflight(queue), dead: (await broker.listDeadLetters(queue, { limit: 1 })).total })),
      );
      if (this.json) this.printJson(rows);
      else this.context.stdout.write(`${renderTable(this.context.stdout, ['queue', 'pending', 'inflight', 'dead'], rows.map((r) => [r.queue, r.pending, r.inflight, r.dead]))}\n`);
      return 0;
    });
  }
}
