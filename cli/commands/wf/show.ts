import { Command, Option } from 'clipanion';
import { printable } from '../../output/printable.js';
import { renderTable } from '../../output/table.js';
import { isoTime, WfCommand } from './wf-command.js';

/** `stem wf show ID`: a run with its steps, their timings and results. */
export class WfShowCommand extends WfCommand {
  static override paths = [['wf', 'show']];
  static override usage = Command.Usage({
    category: 'Workflows',
    description: 'Show a workflow run: status, input, result, and each recorded step with its timing and result',
    examples: [['Show a run', '$0 wf show 0190c2f4-…']],
  });

  id = Option.String({ name: 'ID' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    return this.withWorkflows(async (workflows) => {
      const detail = await workflows.show(this.id);
      if (this.json) {
        this.printJson(detail);
        return 0;
      }
      const { run, checkpoints } = detail;
      const lines = [
        `run       ${run.id}`,
        `workflow  ${run.workflow}@${run.version}`,
        `status    ${run.status}${run.rewinds > 0 ? ` (rewound ${run.rewinds}x)` : ''}`,
        `input     ${printable(JSON.stringify(run.input))}`,
      ];
      if (run.status === 'succeeded') lines.push(`result    ${printable(JSON.stringify(run.result ?? null))}`);
      if (run.error !== undefined) lines.push(`error     ${printable(`${run.error.name}: ${run.error.message}`)}`);
      if (run.status === 'sleeping') lines.push(`wakes at  ${isoTime(run.wakeAt)}`);
      if (run.waiting !== undefined) {
        lines.push(`waits for ${run.waiting.event} ${JSON.stringify(run.waiting.key)}${run.wakeAt ? ` until ${isoTime(run.wakeAt)}` : ''}`);
      }
      lines.push(`created   ${isoTime(run.createdAt)}`, `updated   ${isoTime(run.updatedAt)}`);
      if (run.finishedAt !== undefined) lines.push(`finished  ${isoTime(run.finishedAt)}`);
      const rows = checkpoints.map((point) => [
        point.position,
        point.kind,
        point.name,
        isoTime(point.startedAt ?? point.finishedAt),
        point.startedAt === undefined ? '' : `${point.finishedAt - point.startedAt}ms`,
        printable(
          point.error !== undefined
            ? `failed: ${point.error.name}: ${point.error.message}`
            : point.timedOut
              ? 'timed out'
              : JSON.stringify(point.value ?? null),
        ).slice(0, 80),
      ]);
      this.context.stdout.write(
        `${lines.join('\n')}\n\n${renderTable(this.context.stdout, ['#', 'kind', 'step', 'at', 'took', 'result'], rows)}\n`,
      );
      return 0;
    });
  }
}
