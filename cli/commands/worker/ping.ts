import { Command } from 'clipanion';
import { formatDuration } from '../../../sdk/duration.js';
import { renderTable } from '../../output/table.js';
import { WorkerControlCommand } from './control-command.js';

/** What a worker answers to ping. */
interface PingAnswer {
  workerId: string;
  hostname: string;
  pid: number;
  queues: string[];
  pausedQueues: string[];
  state: string;
  uptimeMs: number;
}

/** `stem worker ping`: which workers are alive. */
export class WorkerPingCommand extends WorkerControlCommand {
  static override paths = [['worker', 'ping']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Ask every live worker to reply with its id, host, pid, queues and uptime',
    details: `
      Sends a ping on the control namespace (--namespace, STEM_CONTROL_NAMESPACE, default stem) and
      lists the workers that answer within --timeout. Exits 1 when none answers.
    `,
    examples: [
      ['Ping every worker on Redis', '$0 worker ping --broker redis://localhost:6379'],
      ['Ping one worker, wait up to 3 seconds, print JSON', '$0 worker ping -w worker-1 --timeout 3s --json'],
    ],
  });

  async run(): Promise<number> {
    return this.withControl(async (client) => {
      const replies = await client.request('ping', {}, this.requestOptions());
      if (this.json) this.printJson(replies.map((reply) => reply.reply));
      if (replies.length === 0) return this.noReplies(client);
      if (!this.json) {
        const rows = replies.map((reply) => {
          const answer = reply.reply as PingAnswer;
          return [
            answer.workerId,
            answer.hostname,
            answer.pid,
            answer.queues.join(','),
            answer.pausedQueues.join(','),
            formatDuration(answer.uptimeMs),
          ];
        });
        this.context.stdout.write(`${renderTable(this.context.stdout, ['worker', 'host', 'pid', 'queues', 'paused', 'uptime'], rows)}\n`);
        this.context.stdout.write(`${replies.length} worker(s) replied\n`);
      }
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
