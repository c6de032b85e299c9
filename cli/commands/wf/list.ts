import { Command, Option } from 'clipanion';
import { WORKFLOW_FINAL_STATUSES, type WorkflowRunStatus } from '../../../sdk/contracts/workflow-store.js';
import { UsageError } from '../../../sdk/errors.js';
import { renderTable } from '../../output/table.js';
import { parseIntegerFlag } from '../../parse-input.js';
import { isoTime, WfCommand } from './wf-command.js';

const STATUSES: readonly WorkflowRunStatus[] = ['running', 'sleeping', 'waiting', ...WORKFLOW_FINAL_STATUSES];

/** `stem wf list`: workflow runs, newest first. */
export class WfListCommand extends WfCommand {
  static override paths = [['wf', 'list']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'List workflow runs, newest first',
    examples: [
      ['Every run', '$0 wf list'],
      ['Order runs waiting for an event', '$0 wf list --workflow orders.fulfil --status waiting'],
    ],
  });

  workflow = Option.String('--workflow', { description: 'Only runs of this workflow' });
  status = Option.String('--status', { description: `Only runs in this status (${STATUSES.join(', ')})` });
  limit = Option.String('--limit', '50', { description: 'At most this many' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const limit = parseIntegerFlag('--limit', this.limit, 1)!;
    if (this.status !== undefined && !STATUSES.includes(this.status as WorkflowRunStatus)) {
      throw new UsageError(`--status: "${this.status}" is not a run status; use one of ${STATUSES.join(', ')}`);
    }
    return this.withWorkflows(async (workflows) => {
      const runs = await workflows.list({ workflow: this.workflow, status: this.status as WorkflowRunStatus | undefined, limit });
      if (this.json) {
        this.printJson(runs);
        return 0;
      }
      const rows = runs.map((run) => [
        run.id,
        `${run.workflow}@${run.version}`,
        run.status,
        run.waiting === undefined ? isoTime(run.wakeAt) : `${run.waiting.event}:${run.waiting.key}`,
        isoTime(run.createdAt),
        isoTime(run.updatedAt),
      ]);
      this.context.stdout.write(
        `${renderTable(this.context.stdout, ['id', 'workflow', 'status', 'waits for', 'created', 'updated'], rows)}\n${runs.length} runs\n`,
      );
      return 0;
    });
  }
}
