import { Command } from 'clipanion';
import { WorkerPauseCommand } from './pause.js';

/** `stem worker resume --queue Q`: fetch from a paused queue again. */
export class WorkerResumeCommand extends WorkerPauseCommand {
  static override paths = [['worker', 'resume']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Let workers fetch from a paused queue again',
    details: `
      Without -w the stored pause is cleared too, so workers that start later consume the queue.
    `,
    examples: [
      ['Resume the emails queue everywhere', '$0 worker resume --queue emails'],
      ['Resume it on one worker', '$0 worker resume --queue emails -w worker-1'],
    ],
  });

  override async run(): Promise<number> {
    return this.withControl(async (client) => this.report(await client.resumeQueue(this.queue, this.requestOptions()), 'resumed'));
  }
}
