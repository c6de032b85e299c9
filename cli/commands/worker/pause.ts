import { Command, Option } from 'clipanion';
import type { ControlReply } from '../../../plugins/control/index.js';
import { WorkerControlCommand } from './control-command.js';

/** `stem worker pause --queue Q`: stop fetching from a queue. */
export class WorkerPauseCommand extends WorkerControlCommand {
  static override paths = [['worker', 'pause']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Stop workers fetching from a queue (running tasks finish; reserved ones go back)',
    details: `
      Without -w the pause is written to the revoke store, so workers that start later stay off the
      queue too, until "stem worker resume". With -w only those workers pause, until they restart.
    `,
    examples: [
      ['Pause the emails queue everywhere', '$0 worker pause --queue emails'],
      ['Pause it on one worker only', '$0 worker pause --queue emails -w worker-1'],
    ],
  });

  queue = Option.String('--queue,-q', { required: true, description: 'The queue' });

  async run(): Promise<number> {
    return this.withControl(async (client, stem) => {
      if (this.workers === undefined) this.warnIfNotPersisted(stem, 'the pause');
      const replies = await client.pauseQueue(this.queue, this.requestOptions());
      return this.report(replies, 'paused');
    });
  }

  /** Prints which workers act on the queue; shared with resume. */
  protected report(replies: readonly ControlReply[], verb: 'paused' | 'resumed'): number {
    const acting = replies.filter((reply) => reply.ok && (reply.reply as { consuming: boolean }).consuming).map((reply) => reply.workerId);
    if (this.json)
      this.printJson({
        queue: this.queue,
        [verb]: acting,
        replied: replies.map((reply) => reply.workerId),
        persisted: this.workers === undefined,
      });
    else
      this.context.stdout.write(
        `${verb} ${this.queue} on ${acting.length} worker(s)${acting.length > 0 ? `: ${acting.join(', ')}` : ''}` +
          `${this.workers === undefined ? ' (stored for workers that start later)' : ''}\n`,
      );
    if (this.reportFailures(replies)) return 1;
    return this.workers !== undefined && replies.length === 0 ? 1 : 0;
  }
}
