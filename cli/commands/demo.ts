import { Command } from 'clipanion';
import { formatDuration } from '../../sdk/duration.js';
import { ExitCode } from '../../sdk/errors.js';
import type { Stem as StemType } from '../../sdk/kernel.js';
import { maskUrl } from '../../sdk/url.js';
import { withoutDefaultBroker } from '../config/default-broker.js';
import { renderTable } from '../output/table.js';
import { StemCommand } from '../stem-command.js';

/** `stem demo`: a worker and a producer in one process, and a table of what happened. */
export class DemoCommand extends StemCommand {
  static override paths = [['demo']];
  static override usage = Command.Usage({
    description: 'Run a producer and a worker in one process and show what happened',
    details: `
      Enqueues tasks that succeed, one that fails twice and then succeeds, a delayed one, and a
      priority-9 task that jumps ahead of waiting priority-1 tasks, runs them on one worker, and
      prints a table with timings. In memory by default; set STEM_BROKER_URL (and
      STEM_RESULT_BACKEND_URL) to run it on Redis or Postgres. Exits 1 if a behaviour did not hold.
    `,
    examples: [
      ['Run the demo in memory', '$0 demo'],
      ['Run it on Redis', 'STEM_BROKER_URL=redis://127.0.0.1:6379 STEM_RESULT_BACKEND_URL=redis://127.0.0.1:6379/1 $0 demo'],
    ],
  });

  async run(): Promise<number> {
    // Loaded here, not at start-up: `stem --help` and the other commands never pay for them.
    const [{ Stem }, { demoTasks }, { runDemo }] = await Promise.all([
      import('../../sdk/kernel.js'),
      import('../demo/demo-tasks.js'),
      import('../demo/run-demo.js'),
    ]);
    const config = await this.loadConfig();
    // The demo runs in one process: in memory unless a broker is configured, never in the CLI's SQLite default.
    config.plugins = withoutDefaultBroker(config.plugins);
    const known = new Set((config.tasks ?? []).map((task) => task.name));
    config.tasks = [...(config.tasks ?? []), ...demoTasks.filter((task) => !known.has(task.name))];
    const stem: StemType = await Stem.create(config);
    const out = this.context.stdout;
    const where = config.urls.broker ? maskUrl(config.urls.broker) : 'memory';
    const sharedMemory = config.urls.broker ? 'memory (set STEM_RESULT_BACKEND_URL to share results)' : 'memory';
    out.write(`Stem demo: broker ${where}, backend ${config.urls.backend ? maskUrl(config.urls.backend) : sharedMemory}\n\n`);
    try {
      const report = await runDemo(stem);
      const rows = report.rows.map((row) => [
        row.order || '-',
        row.task,
        row.priority,
        row.attempts,
        row.state,
        row.result,
        formatDuration(row.waitedMs),
        formatDuration(row.ranMs),
      ]);
      const table = renderTable(out, ['#', 'task', 'priority', 'attempts', 'state', 'result', 'waited', 'ran'], rows);
      out.write(`${table}\n\n`);
      for (const check of report.checks) out.write(`${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}\n`);
      out.write(`\n${report.rows.length} tasks on queue ${report.queue} in ${formatDuration(report.totalMs)}\n`);
      return report.checks.every((check) => check.ok) ? ExitCode.ok : ExitCode.failure;
    } finally {
      await stem.close();
    }
  }
}
