import { Command, Option } from 'clipanion';
import { UsageError } from '../../../sdk/errors.js';
import type { StemPlugin } from '../../../sdk/plugin.js';
import type { WorkerOptions } from '../../../sdk/worker-options.js';
import { DEFAULT_BROKER_URL, findDefaultBroker } from '../../config/default-broker.js';
import { logTaskSignals, type LogFormat } from '../../output/task-log.js';
import { parseIntegerFlag, parseListFlag } from '../../parse-input.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem worker start`: consume queues until SIGINT/SIGTERM. */
export class WorkerStartCommand extends ServiceCommand {
  static override paths = [['worker', 'start']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Start a worker that consumes queues until SIGINT or SIGTERM',
    details: `
      Runs tasks from the given queues (default: STEM_WORKER_QUEUES, else the default queue) and
      broadcast channels, logging one line per task. On SIGINT or SIGTERM it stops fetching, lets
      running tasks finish within the grace period, and returns the rest to their queue.
    `,
    examples: [
      [
        'Consume three queues with up to 16 tasks at once',
        '$0 worker start --registry tasks.ts --queues default,reports,emails --concurrency 16',
      ],
      ['Subscribe to a broadcast channel, log JSON', '$0 worker start --broadcasts maintenance --log-format json'],
      ['Publish events that `stem events` shows live', '$0 worker start --registry tasks.ts --events'],
      [
        'Run every task in worker threads, each thread replaced after 100 tasks',
        '$0 worker start --registry tasks.ts --pool threads --max-tasks-per-child 100',
      ],
    ],
  });

  queues = Option.String('--queues', { description: 'Comma-separated queues to consume' });
  broadcasts = Option.String('--broadcasts', { description: 'Comma-separated broadcast channels to subscribe to' });
  concurrency = Option.String('--concurrency,-c', { description: 'Tasks run at once (default 8)' });
  autoscale = Option.String('--autoscale', { description: 'MIN:MAX concurrency' });
  prefetchMultiplier = Option.String('--prefetch-multiplier', { description: 'Deliveries reserved per slot (default 1)' });
  id = Option.String('--id', {
    description: 'The worker id, unique among running workers (default: hostname, pid and a random suffix; or worker.id of the config)',
  });
  hostname = Option.String('--hostname', { description: 'Host name to report (default: os.hostname())' });
  grace = Option.String('--shutdown-grace', { description: 'How long running tasks get on shutdown (default 30s)' });
  logFormat = Option.String('--log-format', 'text', { description: 'text or json' });
  pool = Option.String('--pool', {
    description: 'Run every task in worker threads or child processes: threads or processes (the isolation plugin; see docs/isolation.md)',
  });
  maxTasksPerChild = Option.String('--max-tasks-per-child', { description: 'With --pool: replace a child after this many tasks' });
  maxMemoryPerChild = Option.String('--max-memory-per-child', {
    description: 'With --pool: replace a child above this memory after a task, e.g. 256MB',
  });
  events = Option.Boolean('--events', false, {
    description: 'Publish task and worker events for `stem events` and stem.events (or worker.events in the config); see docs/events.md',
  });
  otel = Option.Boolean('--otel', false, {
    description: 'Export traces and metrics over OTLP with the OpenTelemetry SDK you installed (or STEM_OTEL=1); see docs/telemetry.md',
  });

  async run(): Promise<number> {
    if (this.logFormat !== 'text' && this.logFormat !== 'json')
      throw new UsageError(`--log-format: "${this.logFormat}" must be text or json`);
    const options: WorkerOptions = {};
    const concurrency = parseIntegerFlag('--concurrency', this.concurrency, 1);
    if (concurrency !== undefined) options.concurrency = concurrency;
    if (this.autoscale !== undefined) {
      const match = /^(\d+):(\d+)$/.exec(this.autoscale);
      const min = Number(match?.[1]);
      const max = Number(match?.[2]);
      if (!match || min < 1 || max < min)
        throw new UsageError(`--autoscale: "${this.autoscale}" must be MIN:MAX with 1 <= MIN <= MAX, e.g. 2:16`);
      options.autoscale = { min, max };
    }
    if (this.id !== undefined) {
      if (this.id.trim() === '')
        throw new UsageError('--id is empty; give the worker a name such as --id billing-1, or leave the flag out for a generated one');
      options.id = this.id;
    }
    if (this.hostname !== undefined) options.hostname = this.hostname;
    if (this.events) options.events = true;
    if (this.grace !== undefined) options.shutdownGrace = this.grace;
    const prefetch = parseIntegerFlag('--prefetch-multiplier', this.prefetchMultiplier, 1);
    const overrides = this.serviceOverrides({ ...(prefetch !== undefined ? { prefetchMultiplier: prefetch } : {}) });
    const queues = parseListFlag(this.queues);
    if (queues?.length === 0)
      throw new UsageError(
        '--queues names no queue; name at least one (e.g. --queues default,reports), or leave the flag out to consume the default queue',
      );
    if (queues) overrides.queues = queues;
    const broadcasts = parseListFlag(this.broadcasts);
    if (broadcasts) overrides.broadcasts = broadcasts;

    const [config, { Stem }, { installShutdownHandlers }] = await Promise.all([
      this.loadConfig(overrides),
      import('../../../sdk/kernel.js'),
      import('../../../sdk/shutdown.js'),
    ]);
    // Started before the Stem exists: telemetry() reads the OpenTelemetry providers when it is applied.
    const otel =
      this.otel || process.env.STEM_OTEL
        ? await (await import('../../../plugins/telemetry/index.js')).startOtelExport(config, { flag: this.otel })
        : undefined;
    if (this.pool !== undefined) config.plugins = [...(config.plugins ?? []), await this.isolationPlugin(config.plugins ?? [])];
    else if (this.maxTasksPerChild !== undefined || this.maxMemoryPerChild !== undefined) {
      throw new UsageError('--max-tasks-per-child and --max-memory-per-child need --pool threads or --pool processes');
    }
    const stem = await Stem.create(config);
    const fallback = findDefaultBroker(config.plugins);
    if (!stem.provides('broker')) {
      this.context.stderr.write(
        'stem: note: the broker is memory://, which only this process sees: tasks enqueued by other stem commands never reach ' +
          'this worker; unset STEM_BROKER_URL for the SQLite default, or use redis:// or postgres://\n',
      );
    }
    const stopLogging = logTaskSignals(
      stem.signals,
      this.context.stdout,
      this.logFormat as LogFormat,
      fallback?.used ? `${DEFAULT_BROKER_URL} (${fallback.file})` : undefined,
    );
    const worker = stem.worker(options);
    const stopped = new Promise<void>((resolve) => worker.onStopped(resolve));
    installShutdownHandlers(worker);
    // A broker with nothing of its own to wait on (memory://) leaves Node no handle: without this the
    // process would end at once with exit 13 (an unsettled await) instead of running until stopped.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      await worker.start();
      await stopped;
    } finally {
      clearInterval(keepAlive);
      stopLogging();
      await stem.close();
      await otel?.shutdown();
    }
    return 0;
  }

  /** The isolation plugin `--pool` asks for: every task in a thread or child process that imports the --registry module. */
  private async isolationPlugin(plugins: readonly { name: string }[]): Promise<StemPlugin> {
    if (this.pool !== 'threads' && this.pool !== 'processes') {
      throw new UsageError(`--pool: "${this.pool}" must be threads or processes`);
    }
    if (plugins.some((plugin) => plugin.name === 'isolation')) {
      throw new UsageError('--pool: the config already applies isolation(); set its pool option there, or remove it to use the flag');
    }
    const maxTasksPerChild = parseIntegerFlag('--max-tasks-per-child', this.maxTasksPerChild, 1);
    const { isolation } = await import('../../../plugins/isolation/index.js');
    return isolation({
      pool: this.pool,
      modules: this.registry !== undefined ? [this.registry] : [],
      ...(maxTasksPerChild !== undefined ? { maxTasksPerChild } : {}),
      ...(this.maxMemoryPerChild !== undefined ? { maxMemoryPerChild: this.maxMemoryPerChild } : {}),
    });
  }
}
