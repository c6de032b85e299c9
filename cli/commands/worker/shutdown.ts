import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import { confirmDestructive } from '../../output/confirm.js';
import { WorkerControlCommand } from './control-command.js';

/** `stem worker shutdown`: stop live workers remotely. */
export class WorkerShutdownCommand extends WorkerControlCommand {
  static override paths = [['worker', 'shutdown']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Stop workers: warm (finish running tasks within the grace period) or hard (abort them back to the queue)',
    details: `
      Asks for confirmation unless --yes is given. Either way no task is lost: a warm shutdown lets
      running tasks finish within the worker's shutdown grace, a hard one returns them to their queue.
    `,
    examples: [
      ['Stop one worker gracefully', '$0 worker shutdown -w worker-1 --yes'],
      ['Stop every worker now', '$0 worker shutdown --mode hard --yes'],
    ],
  });

  mode = Option.String('--mode', 'warm', { description: 'warm (default) or hard' });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask for confirmation' });

  async run(): Promise<number> {
    if (this.mode !== 'warm' && this.mode !== 'hard') throw new UsageError(`--mode: "${this.mode}" must be warm or hard`);
    const target = this.workers === undefined ? 'every worker' : this.workers.join(', ');
    if (!(await confirmDestructive(this.context, this.yes, `Shut down ${target} (${this.mode})?`))) return 1;
    return this.withControl(async (client) => {
      const replies = await client.request('shutdown', { mode: this.mode }, this.requestOptions());
      const stopping = replies.filter((reply) => reply.ok).map((reply) => reply.workerId);
      if (this.json) this.printJson({ mode: this.mode, stopping });
      else
        this.context.stdout.write(
          `shutting down ${stopping.length} worker(s) (${this.mode})${stopping.length > 0 ? `: ${stopping.join(', ')}` : ''}\n`,
        );
      if (replies.length === 0) return this.noReplies(client);
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
