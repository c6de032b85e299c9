import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import { isBroadcastAddress } from '../../../sdk/envelope.js';
import type { PriorityRange, RouteDecision } from '../../../plugins/routing/index.js';
import { RoutingCommand } from './routing-command.js';

function parseHeaders(raw: string | undefined): Record<string, string> {
  if (raw === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new UsageError(`--headers: not JSON (${(error as Error).message}); pass an object such as '{"tenant":"acme"}'`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`--headers: ${raw} is not a JSON object; pass an object such as '{"tenant":"acme"}'`);
  }
  const headers: Record<string, string> = {};
  for (const [name, header] of Object.entries(value)) {
    if (typeof header !== 'string' && typeof header !== 'number' && typeof header !== 'boolean') {
      throw new UsageError(`--headers: header "${name}" must be a string, number or boolean`);
    }
    headers[name] = String(header);
  }
  return headers;
}

function parsePriority(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const priority = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw new UsageError(`--priority: ${JSON.stringify(raw)} is not a priority; use a whole number from 0 (lowest) to 9 (highest)`);
  }
  return priority;
}

function describeDecision(task: string, decision: RouteDecision, range: PriorityRange | undefined): string {
  const where = isBroadcastAddress(decision.queue) ? `${decision.queue} (every subscribed worker runs it once)` : `queue ${decision.queue}`;
  const into = range === undefined ? "the queue's range" : `${range.min}–${range.max}`;
  const clamp = decision.clamped === null ? '' : ` (asked ${decision.clamped.from}, clamped into ${into})`;
  return `${task} → ${where}, priority ${decision.priority}${clamp}; decided by ${decision.matchedBy}`;
}

/** `stem routing test <task>`: where a task would go, and with what priority. */
export class RoutingTestCommand extends RoutingCommand {
  static override paths = [['routing', 'test']];
  static override usage = Command.Usage({
    category: 'Routing',
    description: 'Show where a task would be routed, and with what priority',
    details: `
      Resolves one enqueue against the routing table without enqueuing anything: the queue (or
      broadcast address) the task would go to, its priority after clamping into the queue's range,
      and the rule that decided. --queue stands for a queue named at enqueue (only a forced route
      beats it); a task registered in the config brings its own queue and priority.
    `,
    examples: [
      ['Route a task by its name', '$0 routing test reports.generate --routing-config routing.yaml'],
      ['With headers and a priority', `$0 routing test reports.generate --headers '{"tenant":"acme"}' --priority 9`],
      ['As if the caller named a queue, as JSON', '$0 routing test billing.email-receipt --queue critical --json'],
    ],
  });

  /** The task name (or a `broadcast://<channel>` address). */
  task = Option.String({ name: 'task' });
  /** Headers as a JSON object. */
  headers = Option.String('--headers', { description: 'Headers as a JSON object, e.g. \'{"tenant":"acme"}\'' });
  /** A queue named at enqueue. */
  queue = Option.String('--queue', { description: 'A queue named at enqueue (beats every route but a forced one)' });
  /** The enqueue priority. */
  priority = Option.String('--priority', { description: "The enqueue priority, 0–9 (default: the task's, else 5)" });

  async run(): Promise<number> {
    const headers = parseHeaders(this.headers);
    const askedPriority = parsePriority(this.priority);
    const { table, config } = await this.loadRouting();
    const definition = (config.tasks ?? []).find((task) => task.name === this.task);
    const kernelDefaultQueue = config.defaultQueue ?? 'default';
    const priority = askedPriority ?? definition?.options?.priority ?? 5;
    // As the producer does: a broadcast address is its own queue; otherwise explicit, the task's, the default.
    const enqueuedQueue = isBroadcastAddress(this.task) ? this.task : (this.queue ?? definition?.options?.queue ?? kernelDefaultQueue);
    const decision = table.resolveEnqueue(
      { task: this.task, headers, queue: enqueuedQueue, queueExplicit: this.queue !== undefined, priority },
      kernelDefaultQueue,
    );
    if (this.json) this.context.stdout.write(`${JSON.stringify({ task: this.task, headers, ...decision }, null, 2)}\n`);
    else this.context.stdout.write(`${describeDecision(this.task, decision, table.priorityRange(decision.queue))}\n`);
    return 0;
  }
}
