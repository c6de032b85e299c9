import { Command } from 'clipanion';
import type { ScaleDecision } from '../../../sdk/autoscaler.js';
import type { RunningKey, WorkerStats } from '../../../sdk/worker-handle.js';
import { renderTable } from '../../output/table.js';
import { WorkerControlCommand } from './control-command.js';

/** What a worker answers to stats: its counters plus the control plugin's extras. */
type StatsAnswer = WorkerStats & {
  pausedQueues: string[];
  autoscaler: { min: number; max: number; last?: ScaleDecision } | null;
  memory: { rssBytes: number; heapUsedBytes: number };
  /** Absent from workers of an older version. */
  runningKeys?: RunningKey[];
};

/** How many keys the table shows per worker before `+N more` (`--json` lists them all). */
const SHOWN_KEYS = 5;

/** `tenant-42×2 task:report×1 …`: the running tasks of each concurrency key, most first. */
function describeKeys(keys: readonly RunningKey[] | undefined): string {
  if (keys === undefined || keys.length === 0) return '-';
  const sorted = [...keys].sort((a, b) => b.running - a.running || (a.key < b.key ? -1 : 1));
  const shown = sorted.slice(0, SHOWN_KEYS).map((entry) => `${entry.key}×${entry.running}`);
  if (sorted.length > SHOWN_KEYS) shown.push(`+${sorted.length - SHOWN_KEYS} more`);
  return shown.join(' ');
}

/** `stem worker stats`: counters of every live worker. */
export class WorkerStatsCommand extends WorkerControlCommand {
  static override paths = [['worker', 'stats']];
  static override usage = Command.Usage({
    category: 'Workers',
    description:
      'Show processed, failed, in-flight, concurrency, running tasks per concurrency key, autoscaler state and memory of live workers',
    details: `
      Only live workers answer: a worker that died is simply absent. Exits 1 when none answers.
      The keys column counts the tasks each worker runs now per concurrency key (most first);
      \`--json\` lists them all as \`runningKeys\` ({ queue, key, running }). For every key of a
      queue across all workers, with the waiting tasks and the limit: \`stem queues list --keys\`.
    `,
    examples: [
      ['Counters of every worker', '$0 worker stats --broker redis://localhost:6379'],
      ['One worker as JSON', '$0 worker stats -w worker-1 --json'],
    ],
  });

  async run(): Promise<number> {
    return this.withControl(async (client) => {
      const replies = await client.request('stats', {}, this.requestOptions());
      if (this.json)
        this.printJson(
          replies.map((reply) => ({ workerId: reply.workerId, hostname: reply.hostname, pid: reply.pid, ...(reply.reply as object) })),
        );
      if (replies.length === 0) return this.noReplies(client);
      if (!this.json) {
        const rows = replies
          .filter((reply) => reply.ok)
          .map((reply) => {
            const stats = reply.reply as StatsAnswer;
            const autoscale =
              stats.autoscaler === null
                ? '-'
                : `${stats.autoscaler.min}:${stats.autoscaler.max}` +
                  `${stats.autoscaler.last ? ` (last ${stats.autoscaler.last.from}→${stats.autoscaler.last.to})` : ''}`;
            return [
              reply.workerId,
              stats.processed,
              stats.succeeded,
              stats.failed,
              stats.inflight,
              stats.reserved,
              stats.concurrency,
              describeKeys(stats.runningKeys),
              autoscale,
              `${Math.round(stats.memory.rssBytes / 1_048_576)} MiB`,
            ];
          });
        this.context.stdout.write(
          `${renderTable(
            this.context.stdout,
            ['worker', 'processed', 'succeeded', 'failed', 'in-flight', 'reserved', 'concurrency', 'keys', 'autoscale', 'rss'],
            rows,
          )}\n`,
        );
      }
      return this.reportFailures(replies) ? 1 : 0;
    });
  }
}
