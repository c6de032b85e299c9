import { Command } from 'clipanion';
import { isBroadcastAddress } from '../../../sdk/envelope.js';
import type { RoutingTable } from '../../../plugins/routing/index.js';
import { renderTable } from '../../output/table.js';
import { RoutingCommand } from './routing-command.js';

function priorityRule(table: RoutingTable, goesTo: string, override: number | null): string {
  const asked = override === null ? 'as enqueued' : `set to ${override}`;
  const range = isBroadcastAddress(goesTo) ? undefined : table.priorityRange(goesTo);
  return range === undefined ? asked : `${asked}, clamped into ${range.min}–${range.max}`;
}

/** The rows of the table, in the order rules are tried. */
function ruleRows(table: RoutingTable): Array<Array<string | number>> {
  const dump = table.describe();
  const rows: Array<Array<string | number>> = [];
  for (const route of dump.routes) {
    const match = [
      route.tasks.length > 0 ? `task ${route.tasks.join(' | ')}` : 'any task',
      ...Object.entries(route.headers).map(([name, value]) => `${name}=${value}`),
    ];
    rows.push([
      rows.length + 1,
      `routes[${route.index}]${route.force ? ' (force)' : ''}`,
      match.join(', '),
      route.goesTo,
      priorityRule(table, route.goesTo, route.priority),
    ]);
  }
  rows.push([
    rows.length + 1,
    'explicit queue',
    'a queue named at enqueue',
    'that queue',
    "as enqueued, clamped into that queue's range if it has one",
  ]);
  for (const queue of dump.queues) {
    for (const key of queue.routingKeys)
      rows.push([rows.length + 1, `queues.${queue.name}.routing_key`, key, queue.name, priorityRule(table, queue.name, null)]);
  }
  rows.push([
    rows.length + 1,
    'task queue',
    'a task whose definition names a queue',
    'that queue',
    "as enqueued, clamped into that queue's range if it has one",
  ]);
  if (dump.defaultQueue !== null) {
    const alias = dump.defaultQueue.alias === null ? '' : ` (alias ${dump.defaultQueue.alias})`;
    rows.push([
      rows.length + 1,
      'default_queue',
      'any other task',
      `${dump.defaultQueue.queue}${alias}`,
      priorityRule(table, dump.defaultQueue.queue, null),
    ]);
  }
  for (const broadcast of dump.broadcasts) {
    rows.push(['-', `broadcasts.${broadcast.name}`, broadcast.address, `every subscribed worker (${broadcast.delivery})`, 'as enqueued']);
  }
  return rows;
}

/** `stem routing dump`: the resolved routing table, in the order its rules are tried. */
export class RoutingDumpCommand extends RoutingCommand {
  static override paths = [['routing', 'dump']];
  static override usage = Command.Usage({
    category: 'Routing',
    description: 'Print the resolved routing table',
    details: `
      Reads the routing file the way a worker does (--routing-config, else STEM_ROUTING_CONFIG, else
      a routing() plugin in stem.config.ts), validates it, and prints its rules in the order they are
      tried: forced routes beat a queue named at enqueue, which beats the other routes; then routing
      keys, then the task's own queue, then default_queue. With --registry, every glob must also match
      a registered task. Exits 64 when the file is missing or invalid.
    `,
    examples: [
      ['Print the table of a routing file', '$0 routing dump --routing-config routing.yaml'],
      ['Print it as JSON for a script', 'STEM_ROUTING_CONFIG=routing.yaml $0 routing dump --json'],
      ['Check every glob against the tasks of a module', '$0 routing dump --routing-config routing.yaml --registry tasks.ts'],
    ],
  });

  async run(): Promise<number> {
    const { table } = await this.loadRouting();
    const out = this.context.stdout;
    if (this.json) {
      out.write(`${JSON.stringify(table.describe(), null, 2)}\n`);
      return 0;
    }
    out.write(`Routing table from ${table.source} (rules tried top to bottom; the first match wins)\n\n`);
    out.write(`${renderTable(out, ['#', 'rule', 'match', 'goes to', 'priority'], ruleRows(table))}\n`);
    const channels = table.broadcastChannels;
    if (channels.length > 0) out.write(`\nWorkers that name no broadcasts subscribe to: ${channels.join(', ')}\n`);
    const queues = table.defaultWorkerQueues;
    if (queues !== undefined) out.write(`Workers that name no queues consume: ${queues.join(', ')}\n`);
    return 0;
  }
}
