import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import { printable } from '../../output/printable.js';
import { renderTable } from '../../output/table.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem worker concurrency-limit KEY [LIMIT]`: change (or show) a concurrency key's limit at run time. */
export class WorkerConcurrencyLimitCommand extends ServiceCommand {
  static override paths = [['worker', 'concurrency-limit']];
  static override usage = Command.Usage({
    category: 'Workers',
    description:
      "Change a concurrency key's limit at run time, for every worker (LIMIT: a number, or default); without LIMIT, show the keys",
    details: `
      The limit is kept by the broker, which enforces it for every worker at once, those that start
      later included: it wins over the \`concurrencyLimit\` the tasks carry until set back with
      "default". A higher limit lets waiting tasks of the key start at once; a lower one lets the
      running ones finish. A task-wide limit (\`concurrencyLimit\` without \`concurrencyKey\`) is the
      key \`task:<name>\`. Without LIMIT (or with --json), prints each key of the queue with its
      running and waiting tasks and its limit. See docs/flow-control.md.
    `,
    examples: [
      ['Let tenant-42 run 5 tasks at once', '$0 worker concurrency-limit tenant-42 5'],
      ['At most 3 report builds at once, on the reports queue', '$0 worker concurrency-limit task:reports.build 3 --queue reports'],
      ['Go back to the limit the tasks carry', '$0 worker concurrency-limit tenant-42 default'],
      ['Show the keys of a queue', '$0 worker concurrency-limit --queue default'],
    ],
  });

  key = Option.String({ name: 'KEY', required: false });
  limit = Option.String({ name: 'LIMIT', required: false });
  queue = Option.String('--queue,-q', 'default', { description: 'The queue of the keyed tasks (default: default)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    let limit: number | null | undefined;
    if (this.limit !== undefined) {
      if (this.key === undefined) throw new UsageError('give the KEY whose limit to change');
      if (this.limit === 'default') limit = null;
      else {
        const { parseConcurrencyLimit } = await import('../../../sdk/concurrency-key.js');
        limit = parseConcurrencyLimit(this.limit, `concurrency limit of "${this.key}"`);
      }
    }
    return this.withStem(async (stem) => {
      const control = stem.broker.concurrency;
      if (control === undefined) {
        const { UnsupportedCapabilityError } = await import('../../../sdk/errors.js');
        throw new UnsupportedCapabilityError(
          'concurrency',
          stem.broker.constructor.name.replace(/Broker$/, ''),
          'stem worker concurrency-limit',
        );
      }
      if (limit !== undefined) await control.setLimit(this.queue, this.key!, limit);
      let keys = await control.stats(this.queue);
      if (this.key !== undefined) keys = keys.filter((entry) => entry.key === this.key);
      if (this.json) {
        this.printJson(limit === undefined ? { queue: this.queue, keys } : { queue: this.queue, key: this.key, limit, keys });
        return 0;
      }
      if (limit !== undefined) {
        this.context.stdout.write(`concurrency limit of ${printable(this.key!)} on ${printable(this.queue)}: ${this.limit}\n`);
        return 0;
      }
      if (keys.length === 0) this.context.stdout.write(`no concurrency keys on ${printable(this.queue)}\n`);
      else
        this.context.stdout.write(
          `${renderTable(
            this.context.stdout,
            ['key', 'running', 'waiting', 'limit'],
            keys.map((entry) => [printable(entry.key), entry.running, entry.waiting, entry.limit]),
          )}\n`,
        );
      return 0;
    });
  }
}
