import { Command, Option } from 'clipanion';
import type { Stem } from '../../../sdk/kernel.js';
import { maskUrl } from '../../../sdk/url.js';
import { formatDuration } from '../../../sdk/duration.js';
import type { Beat, FiringReport } from '../../../plugins/beat/index.js';
import { pluginForUrl } from '../../config/url-plugins.js';
import { ScheduleStoreCommand } from '../schedule/schedule-store-command.js';

/** `stem beat start`: fires the due entries of the schedule store until SIGINT or SIGTERM. */
export class BeatStartCommand extends ScheduleStoreCommand {
  static override paths = [['beat', 'start']];
  static override usage = Command.Usage({
    category: 'Beat',
    description: 'Run the Beat scheduler until SIGINT or SIGTERM',
    details: `
      Every tick, enqueues the entries that are due with the headers stem-schedule-id and
      stem-scheduled-for. Run several for availability: a lock per firing makes each firing happen
      once. After downtime, an entry that missed slots fires once, not once per missed slot. The locks
      live in the broker's store (STEM_BROKER_URL), else next to the schedules (--store). Workers
      elsewhere only see the tasks when the broker is shared: set STEM_BROKER_URL.
    `,
    examples: [
      ['Run Beat on Redis', 'STEM_BROKER_URL=redis://127.0.0.1:6379 $0 beat start --store redis://127.0.0.1:6379'],
      ['Look for due entries every 200ms', '$0 beat start --store redis://127.0.0.1:6379 --tick 200ms'],
    ],
  });

  /** Tick length. */
  tick = Option.String('--tick', { description: 'How often to look for due entries (default 1s, or the beat() plugin option)' });
  /** Lock TTL. */
  lockTtl = Option.String('--lock-ttl', { description: "Longest a firing's lock is held if this process dies while firing (default 30s)" });

  async run(): Promise<number> {
    const [{ Stem }, { Beat, isBeatPlugin }] = await Promise.all([
      import('../../../sdk/kernel.js'),
      import('../../../plugins/beat/index.js'),
    ]);
    const config = await this.loadConfig(this.store === undefined ? {} : { scheduleStoreUrl: this.store });
    // A beat() plugin in the config gives its options; this command runs the one Beat itself.
    const fromConfig = (config.plugins ?? []).find(isBeatPlugin)?.options ?? {};
    config.plugins = (config.plugins ?? []).filter((plugin) => !isBeatPlugin(plugin));
    const storeUrl = config.urls.scheduleStore;
    if (config.urls.broker === undefined && storeUrl !== undefined) {
      const locks = await pluginForUrl('lockStore', storeUrl, this.store === undefined ? 'STEM_SCHEDULE_STORE_URL' : '--store');
      if (locks) config.plugins.push(locks);
    }
    const out = this.context.stdout;
    const beat = (stem: Stem): Beat =>
      new Beat(stem, {
        ...fromConfig,
        ...(this.tick === undefined ? {} : { tick: this.tick }),
        ...(this.lockTtl === undefined ? {} : { lockTtl: this.lockTtl }),
        onFiring: (report: FiringReport) => {
          fromConfig.onFiring?.(report);
          if (report.outcome === 'enqueued') {
            const delay = report.delayMs === undefined ? '' : ` (jitter ${formatDuration(report.delayMs)})`;
            out.write(
              `${new Date().toISOString()} enqueued ${report.scheduleId} (${report.task}) for ` +
                `${new Date(report.scheduledFor).toISOString()} as ${report.taskId}${delay}\n`,
            );
          } else if (report.outcome === 'skipped') {
            out.write(
              `${new Date().toISOString()} skipped ${report.scheduleId} for ${new Date(report.scheduledFor).toISOString()} (a ` +
                `schedule hook said so)\n`,
            );
          }
        },
        onError: (error, scheduleId) => {
          const message = error instanceof Error ? error.message : String(error);
          this.context.stderr.write(`stem: beat${scheduleId === undefined ? '' : ` (schedule "${scheduleId}")`}: ${message}\n`);
        },
      });

    const stem = await Stem.create(config);
    try {
      const scheduler = beat(stem);
      const where = storeUrl === undefined ? (stem.provides('scheduleStore') ? "the config's store" : 'memory') : maskUrl(storeUrl);
      out.write(`beat ${scheduler.owner} started: schedules in ${where}, tick ${formatDuration(scheduler.tickMs)}\n`);
      if (!stem.provides('broker')) {
        this.context.stderr.write(
          'stem: note: the broker is in memory, so only this process sees the tasks; set STEM_BROKER_URL to reach your workers\n',
        );
      }
      if (!stem.provides('scheduleStore') && fromConfig.schedules === undefined) {
        this.context.stderr.write('stem: note: the schedule store is in memory and empty; pass --store or set STEM_SCHEDULE_STORE_URL\n');
      }
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        const stop = (received: NodeJS.Signals): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve(received);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        scheduler.start();
      });
      await scheduler.stop();
      out.write(`${signal} received: beat stopped\n`);
      return 0;
    } finally {
      await stem.close();
    }
  }
}
