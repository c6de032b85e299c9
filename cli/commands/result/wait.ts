import { Command, Option } from 'clipanion';
import { assertValidName } from '../../../sdk/envelope.js';
import { ExitCode } from '../../../sdk/errors.js';
import { waitForTerminalStatus } from '../../../sdk/task-handle.js';
import { parseDurationFlag } from '../../parse-input.js';
import { TtyProgress } from '../../output/progress.js';
import { ServiceCommand } from '../../service-command.js';
import { printStatus } from './print-status.js';

/** `stem result wait ID`: wait until a task finishes. */
export class ResultWaitCommand extends ServiceCommand {
  static override paths = [['result', 'wait']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: 'Wait for a task to finish; exit 1 if it failed or was cancelled',
    examples: [['Wait up to a minute', '$0 result wait 0190c2f4-… --timeout 1m']],
  });

  id = Option.String({ name: 'ID' });
  timeout = Option.String('--timeout', '30s', { description: 'How long to wait' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    assertValidName('taskId', this.id);
    const timeoutMs = parseDurationFlag('--timeout', this.timeout)!;
    return this.withStem(async (stem) => {
      const progress = new TtyProgress(this.context.stderr, `waiting for ${this.id}`);
      const started = Date.now();
      const ticker = setInterval(
        () => progress.update(`${((Date.now() - started) / 1000).toFixed(0)}s of ${(timeoutMs / 1000).toFixed(0)}s`),
        250,
      );
      const status = await waitForTerminalStatus(stem.backend, this.id, { timeoutMs }).finally(() => {
        clearInterval(ticker);
        progress.done();
      });
      printStatus(this.context.stdout, status, this.json);
      return status.state === 'succeeded' ? ExitCode.ok : ExitCode.failure;
    });
  }
}
