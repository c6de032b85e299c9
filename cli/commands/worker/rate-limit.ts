import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import type { RateLimitReply, RateLimitSpec } from '../../../plugins/rate-limit/index.js';
import { WorkerControlCommand } from './control-command.js';

/** `stem worker rate-limit TASK RATE`: change a task's rate at run time. */
export class WorkerRateLimitCommand extends WorkerControlCommand {
  static override paths = [['worker', 'rate-limit']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: "Change a task's rate limit at run time, for every worker (RATE: 10/s, 100/m, 1000/h, none, or default)",
    details: `
      The rate is stored in the revoke store, so workers that start later use it too, and sent to the
      live workers at once. "none" lifts the limit; "default" goes back to the task's rateLimit option.
    `,
    examples: [
      ['Allow 50 emails a minute', '$0 worker rate-limit emails.send 50/m'],
      ["Go back to the task's own rateLimit", '$0 worker rate-limit emails.send default'],
    ],
  });

  task = Option.String({ name: 'TASK' });
  rate = Option.String({ name: 'RATE' });

  async run(): Promise<number> {
    const spec = this.rate === 'none' ? null : this.rate === 'default' ? undefined : (this.rate as RateLimitSpec);
    if (this.workers !== undefined)
      throw new UsageError('-w: a rate limit is shared by every worker (one bucket); change it for all of them');
    return this.withControl(async (client, stem) => {
      this.warnIfNotPersisted(stem, 'the rate limit');
      const { RATE_LIMIT_COMMAND, setRateLimit } = await import('../../../plugins/rate-limit/index.js');
      await setRateLimit(stem, this.task, spec);
      const replies = await client.request(
        RATE_LIMIT_COMMAND,
        spec === undefined ? { task: this.task } : { task: this.task, rateLimit: spec },
        this.requestOptions(),
      );
      const applied = replies
        .filter((reply) => reply.ok)
        .map((reply) => ({ workerId: reply.workerId, rateLimit: (reply.reply as RateLimitReply).rateLimit }));
      if (this.json) this.printJson({ task: this.task, rateLimit: spec ?? null, workers: applied });
      else this.context.stdout.write(`rate limit of ${this.task}: ${this.rate}; ${applied.length} live worker(s) updated\n`);
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
