import { Command } from 'clipanion';
import { formatDuration } from '../../../sdk/duration.js';
import { renderTable } from '../../output/table.js';
import { WorkerControlCommand } from './control-command.js';

/** One task a worker holds. */
interface HeldTask {
  id: string;
  name: string;
  attempt: number;
  queue?: string;
  runtimeMs?: number;
}

/** What a worker answers to inspect. */
interface InspectAnswer {
  active: HeldTask[];
  reserved: HeldTask[];
}

/** `stem worker inspect`: the tasks each live worker runs and holds. */
export class WorkerInspectCommand extends WorkerControlCommand {
  static override paths = [['worker', 'inspect']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'List the tasks each live worker runs now (with their runtime) and has reserved',
    details: `
      Scheduled tasks (notBefore, retries waiting for their backoff) wait in the broker, not in a
      worker, so they are counted as pending by "stem queues list" rather than listed here.
    `,
    examples: [
      ['What every worker is doing', '$0 worker inspect --broker redis://localhost:6379'],
      ['One worker as JSON', '$0 worker inspect -w worker-1 --json'],
    ],
  });

  async run(): Promise<number> {
    return this.withControl(async (client) => {
      const replies = await client.request('inspect', {}, this.requestOptions());
      if (this.json)
        this.printJson(replies.map((reply) => ({ workerId: reply.workerId, hostname: reply.hostname, ...(reply.reply as object) })));
      if (replies.length === 0) return this.noReplies(client);
      if (!this.json) {
        const rows: Array<Array<string | number>> = [];
        for (const reply of replies.filter((each) => each.ok)) {
          const answer = reply.reply as InspectAnswer;
          for (const task of answer.active)
            rows.push([reply.workerId, 'active', task.id, task.name, task.attempt, formatDuration(task.runtimeMs ?? 0)]);
          for (const task of answer.reserved) rows.push([reply.workerId, 'reserved', task.id, task.name, task.attempt, '']);
          if (answer.active.length === 0 && answer.reserved.length === 0) rows.push([reply.workerId, 'idle', '', '', '', '']);
        }
        this.context.stdout.write(
          `${renderTable(this.context.stdout, ['worker', 'state', 'task id', 'task', 'attempt', 'runtime'], rows)}\n`,
        );
      }
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
