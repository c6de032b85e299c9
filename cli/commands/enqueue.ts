import { Command, Option } from 'clipanion';
import { isTerminal } from '../../sdk/contracts/result-backend.js';
import { ExitCode, UsageError } from '../../sdk/errors.js';
import type { EnqueueOptions } from '../../sdk/task.js';
import { waitForTerminalStatus } from '../../sdk/task-handle.js';
import { parseDurationFlag, parseHeadersFlag, parseIntegerFlag, readArgsFlag } from '../parse-input.js';
import { duplicateOf } from '../../plugins/unique/index.js';
import type { PriorityClamp } from '../../plugins/routing/routing-table.js';
import type { TaskHandle } from '../../sdk/task-handle.js';
import { printable } from '../output/printable.js';
import { TtyProgress } from '../output/progress.js';
import { ServiceCommand } from '../service-command.js';

/** Tasks per enqueueMany call of `--count`. */
const ENQUEUE_BATCH = 1_000;

/** The most copies one `--count` publishes: past it, a typo (1e9) would flood the broker. */
export const MAX_COUNT = 1_000_000;

/** What the routing did to the priority asked for, if it clamped it (`clampedMeta`: the routing plugin's CLAMPED_META). */
function clampOf(handle: TaskHandle, clampedMeta: string): PriorityClamp | null {
  return (handle.envelope?.meta?.[clampedMeta] as PriorityClamp | undefined) ?? null;
}

/** One enqueued task as text: id, name, queue, priority (and its clamp), not-before time. */
function describe(handle: TaskHandle, clampedMeta: string): string {
  const name = printable(handle.name);
  if (duplicateOf(handle)) return `${handle.id} ${name}: a duplicate of a task enqueued earlier; not enqueued again`;
  const clamp = clampOf(handle, clampedMeta);
  const notBefore = handle.envelope?.notBefore;
  const details = [`priority ${handle.envelope?.priority}${clamp ? `, clamped from ${clamp.from} by the queue's priority range` : ''}`];
  if (notBefore !== undefined) details.push(`not before ${new Date(notBefore).toISOString()}`);
  return `${handle.id} ${name} -> ${printable(handle.queue)} (${details.join('; ')})`;
}

/** `stem enqueue`: publish a task (or a broadcast) from the command line. */
export class EnqueueCommand extends ServiceCommand {
  static override paths = [['enqueue']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: 'Enqueue a task, or a broadcast with broadcast://CHANNEL',
    details: `
      Publishes TASK with --args (a JSON object; \`--args -\` or \`--args-file FILE\` for large ones).
      With --registry, the task name is checked against the module's tasks. With --wait, waits for
      the result and exits 1 if the task failed. With no broker configured (--broker, STEM_BROKER_URL
      or a broker plugin in the config) the task goes to the project's SQLite file, .stem/stem.db,
      where a \`stem worker start\` of the same project finds it.
    `,
    examples: [
      [
        'Enqueue a report in 5 minutes with priority 8',
        `$0 enqueue reports.generate --args '{"customerId":42}' --not-before 5m --priority 8 --registry tasks.ts`,
      ],
      [
        'Broadcast to every subscribed worker',
        `$0 enqueue broadcast://maintenance --args '{"action":"restart"}' --routing-config routing.yaml`,
      ],
      ['Enqueue and wait for the result', `$0 enqueue math.add --args '{"a":1,"b":2}' --wait --timeout 30s`],
      [
        'Large arguments from a file, or from stdin',
        `$0 enqueue reports.generate --args-file args.json; cat args.json | $0 enqueue reports.generate --args -`,
      ],
    ],
  });

  task = Option.String({ name: 'TASK' });
  args = Option.String('--args', { description: 'Arguments as a JSON object (default {}); - reads stdin' });
  argsFile = Option.String('--args-file', { description: 'Read the arguments from a JSON file (- for stdin)' });
  headers = Option.String('--headers', { description: 'Headers as a JSON object of strings' });
  queue = Option.String('--queue', { description: 'Queue (beats routing unless the route forces)' });
  priority = Option.String('--priority', { description: '0-9, higher runs first' });
  notBefore = Option.String('--not-before', { description: 'Delay (5m) or ISO time' });
  maxRetries = Option.String('--max-retries', { description: 'Retries after the first attempt' });
  count = Option.String('--count', { description: `Enqueue this many copies (1 to ${MAX_COUNT.toLocaleString('en')})` });
  wait = Option.Boolean('--wait', false, { description: 'Wait for the result' });
  timeout = Option.String('--timeout', '30s', { description: 'How long --wait waits' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const args = await readArgsFlag(this.args, this.argsFile, this.context.stdin);
    const options: EnqueueOptions = {};
    const headers = parseHeadersFlag('--headers', this.headers);
    if (headers) options.headers = headers;
    if (this.queue !== undefined) options.queue = this.queue;
    const priority = parseIntegerFlag('--priority', this.priority, 0, 9);
    if (priority !== undefined) options.priority = priority;
    if (this.notBefore !== undefined) options.notBefore = this.notBefore;
    const maxRetries = parseIntegerFlag('--max-retries', this.maxRetries, 0);
    if (maxRetries !== undefined) options.maxRetries = maxRetries;
    const count = parseIntegerFlag('--count', this.count, 1, MAX_COUNT) ?? 1;
    const timeoutMs = parseDurationFlag('--timeout', this.timeout)!;

    const config = await this.loadConfig(this.serviceOverrides());
    // Loaded here, not at start-up (the routing plugin brings the YAML parser).
    const [{ Stem }, { CLAMPED_META }] = await Promise.all([import('../../sdk/kernel.js'), import('../../plugins/routing/index.js')]);
    const stem = await Stem.create(config);
    try {
      const inMemory = !stem.provides('broker');
      if (inMemory && config.urls.broker === undefined) {
        throw new UsageError(
          'no broker configured: the task would go to an in-memory broker that ends with this command; pass --broker redis://… ' +
            '(or postgres://…), set STEM_BROKER_URL, or add a broker plugin to stem.config.ts',
        );
      }
      const progress = new TtyProgress(this.context.stderr, `enqueue ${this.task}`);
      const handles = [];
      for (let sent = 0; sent < count; sent += ENQUEUE_BATCH) {
        const size = Math.min(ENQUEUE_BATCH, count - sent);
        handles.push(...(await stem.enqueueMany(Array.from({ length: size }, () => ({ task: this.task, args, options })))));
        progress.update(`${sent + size} of ${count}`);
      }
      progress.done();
      const out = this.context.stdout;
      if (!this.wait) {
        if (this.json)
          this.printJson(
            handles.map((h) => ({
              id: h.id,
              task: h.name,
              queue: h.queue,
              priority: h.envelope?.priority,
              clamped: clampOf(h, CLAMPED_META),
              notBefore: h.envelope?.notBefore ?? null,
              duplicateOf: duplicateOf(h) ?? null,
            })),
          );
        else for (const h of handles) out.write(`${describe(h, CLAMPED_META)}\n`);
        if (inMemory)
          this.context.stderr.write('stem: note: the broker is memory://, which ends with this command: no worker will run these tasks\n');
        return ExitCode.ok;
      }
      const waiting = new TtyProgress(this.context.stderr, 'waiting');
      let finished = 0;
      waiting.update(`0 of ${handles.length} finished`);
      const statuses = await Promise.all(
        handles.map(async (h) => {
          const status = await waitForTerminalStatus(stem.backend, h.id, { timeoutMs });
          waiting.update(`${++finished} of ${handles.length} finished`);
          return status;
        }),
      ).finally(() => waiting.done());
      if (this.json) this.printJson(statuses);
      else
        for (const status of statuses)
          out.write(
            `${status.id} ${status.state} ` +
              `${printable(status.state === 'succeeded' ? JSON.stringify(status.result) : (status.error?.message ?? ''))}\n`,
          );
      return statuses.every((status) => isTerminal(status.state) && status.state === 'succeeded') ? ExitCode.ok : ExitCode.failure;
    } finally {
      await stem.close();
    }
  }
}
