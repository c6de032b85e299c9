import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import type { RevokeReply } from '../../../plugins/revoke/index.js';
import { WorkerControlCommand } from './control-command.js';

/** `stem worker revoke TASK_ID…`: never run these tasks; with --terminate, abort them where they run. */
export class WorkerRevokeCommand extends WorkerControlCommand {
  static override paths = [['worker', 'revoke']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Revoke tasks: a queued one is skipped and cancelled; with --terminate a running one is aborted',
    details: `
      The revoke is written to the revoke store (STEM_REVOKE_STORE_URL or --revoke-store), so it
      outlives worker restarts and reaches workers that start later, and it is sent to the live
      workers at once. A revoked task ends in state cancelled and never runs again.
    `,
    examples: [
      ['Revoke a queued task', '$0 worker revoke 0190c2f4-5b6e-7c3a-9d1e-2f4a6b8c0d1e'],
      ['Abort a running task', '$0 worker revoke 0190c2f4-5b6e-7c3a-9d1e-2f4a6b8c0d1e --terminate --reason "wrong input"'],
    ],
  });

  taskIds = Option.Rest({ required: 1, name: 'TASK_ID' });
  terminate = Option.Boolean('--terminate', false, { description: 'Also abort the task where it runs now' });
  reason = Option.String('--reason', { description: 'Why (kept with the revoke)' });

  async run(): Promise<number> {
    for (const id of this.taskIds) assertValidName('taskId', id);
    return this.withControl(async (client, stem) => {
      this.warnIfNotPersisted(stem, 'the revoke');
      const { REVOKE_COMMAND, revokeTask } = await import('../../../plugins/revoke/index.js');
      const entries = await revokeTask(stem, this.taskIds, {
        terminate: this.terminate,
        ...(this.reason === undefined ? {} : { reason: this.reason }),
      });
      const replies = await client.request(REVOKE_COMMAND, { entries }, this.requestOptions());
      const terminated = replies.flatMap((reply) =>
        reply.ok ? (reply.reply as RevokeReply).terminated.map((taskId) => ({ taskId, workerId: reply.workerId })) : [],
      );
      if (this.json) {
        this.printJson({ revoked: this.taskIds, terminate: this.terminate, workers: replies.map((reply) => reply.workerId), terminated });
      } else {
        this.context.stdout.write(`revoked ${this.taskIds.join(', ')}; ${replies.length} live worker(s) told\n`);
        for (const { taskId, workerId } of terminated) this.context.stdout.write(`terminated ${taskId} on ${workerId}\n`);
        if (this.terminate && terminated.length === 0) this.context.stdout.write('no worker was running it\n');
      }
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
