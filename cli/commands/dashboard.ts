import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Command, Option } from 'clipanion';
import type { DashboardControls } from '../../plugins/dashboard/index.js';
import { UsageError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { parseIntegerFlag } from '../parse-input.js';
import { ServiceCommand } from '../service-command.js';

/** Host names that reach only this machine: a dashboard bound to them answers only these (DNS rebinding). */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** The dashboard's actions that live in other plugins (control, rate-limit, revoke, beat), wired as the worker commands do. */
export async function dashboardControls(stem: Stem): Promise<DashboardControls> {
  const [{ ControlClient }, { QueuePauses }, { RATE_LIMIT_COMMAND, setRateLimit }, { REVOKE_COMMAND, revokeTask }, { ScheduleEditor }] =
    await Promise.all([
      import('../../plugins/control/index.js'),
      import('../../plugins/control/queue-pauses.js'),
      import('../../plugins/rate-limit/index.js'),
      import('../../plugins/revoke/index.js'),
      import('../../plugins/beat/index.js'),
    ]);
  const client = new ControlClient(stem);
  return {
    pauseQueue: async (queue) => void (await client.pauseQueue(queue)),
    resumeQueue: async (queue) => void (await client.resumeQueue(queue)),
    pausedQueues: async () => [...(await new QueuePauses(stem.service('revokeStore'), client.namespace).paused())],
    setRateLimit: async (task, rate) => {
      await setRateLimit(stem, task, rate as Parameters<typeof setRateLimit>[2]);
      await client.request(RATE_LIMIT_COMMAND, rate === undefined ? { task } : { task, rateLimit: rate });
    },
    revoke: async (taskId, { terminate }) => {
      const entries = await revokeTask(stem, [taskId], { terminate, reason: 'revoked from the dashboard' });
      await client.request(REVOKE_COMMAND, { entries });
    },
    setScheduleEnabled: (id, enabled) => new ScheduleEditor(stem.service('scheduleStore')).setEnabled(id, enabled),
  };
}

/** `stem dashboard`: the web dashboard on a local port, live from the event stream. */
export class DashboardCommand extends ServiceCommand {
  static override paths = [['dashboard']];
  static override usage = Command.Usage({
    category: 'Workers',
    description: 'Serve the web dashboard: queues, workers, tasks, dead letters and schedules, live',
    details: `
      Serves the dashboard on 127.0.0.1 (--host to change it) until SIGINT or SIGTERM. Live updates
      come from the events of workers started with --events. Actions (retry, replay, purge, pause,
      rate limits, revoke, enable/disable) need the token: --token or STEM_DASHBOARD_TOKEN, else a
      random one is made and printed in the URL to open. --read-only refuses every action.
    `,
    examples: [
      ['On the default port, against Redis', '$0 dashboard --broker redis://127.0.0.1:6379'],
      ['Read-only, on every interface', '$0 dashboard --host 0.0.0.0 --read-only'],
      ['With a fixed token under /stem', 'STEM_DASHBOARD_TOKEN=… $0 dashboard --port 8080 --base-path /stem'],
    ],
  });

  port = Option.String('--port', '5555', { description: 'The port (default 5555; 0 picks a free one)' });
  host = Option.String('--host', '127.0.0.1', { description: 'The address to bind (default 127.0.0.1: this machine only)' });
  token = Option.String('--token', { description: 'The token actions need (default: STEM_DASHBOARD_TOKEN, else a random one)' });
  readOnly = Option.Boolean('--read-only', false, { description: 'Refuse every action' });
  basePath = Option.String('--base-path', '/', { description: 'The path to serve under (default /)' });

  async run(): Promise<number> {
    const port = parseIntegerFlag('--port', this.port, 0) ?? 5555;
    if (port > 65_535) throw new UsageError(`--port: ${port} is not a port (0 to 65535)`);
    const given = this.token ?? (process.env.STEM_DASHBOARD_TOKEN || undefined);
    const token = this.readOnly ? undefined : (given ?? randomBytes(18).toString('base64url'));
    const stem = await this.createStem(this.serviceOverrides());
    try {
      if (!stem.provides('backend'))
        this.context.stderr.write(
          'stem: warning: no result backend is configured (STEM_RESULT_BACKEND_URL, --backend, or a config plugin): the dashboard ' +
            "reads this process's empty in-memory one and shows no task or worker\n",
        );
      if (!stem.provides('eventBus'))
        this.context.stderr.write(
          'stem: warning: the broker carries no event stream (Redis or Postgres do): the dashboard will not update live\n',
        );
      const { createDashboard } = await import('../../plugins/dashboard/index.js');
      const loopback = LOOPBACK_NAMES.includes(this.host) || this.host.startsWith('127.');
      const dashboard = createDashboard(stem, {
        basePath: this.basePath,
        readOnly: this.readOnly,
        controls: await dashboardControls(stem),
        ...(token === undefined ? {} : { token }),
        ...(loopback ? { allowedHosts: [...LOOPBACK_NAMES, this.host] } : {}),
      });
      const server = createServer(dashboard);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.host, resolve);
      });
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      const shownHost = this.host.includes(':') ? `[${this.host}]` : this.host;
      const path = this.basePath.endsWith('/') ? this.basePath : `${this.basePath}/`;
      const url = `http://${shownHost}:${bound}${path}`;
      const generated = token !== undefined && given === undefined;
      this.context.stdout.write(`stem dashboard on ${url}\n`);
      if (this.readOnly) this.context.stdout.write('read-only: every action is refused\n');
      // The token travels in the fragment: never sent to the server, never in its logs.
      else if (generated) this.context.stdout.write(`open ${url}#token=${token} to unlock actions (a token made for this run)\n`);
      else this.context.stdout.write('actions need the token given with --token or STEM_DASHBOARD_TOKEN\n');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return 0;
    } finally {
      await stem.close();
    }
  }
}
