import { Command, Option } from 'clipanion';
import type { ServiceName } from '../../sdk/contracts/index.js';
import { ExitCode } from '../../sdk/errors.js';
import { maskUrl } from '../../sdk/url.js';
import { renderTable } from '../output/table.js';
import { ServiceCommand } from '../service-command.js';

const PROBE_ID = 'stem-health-probe';

/** `stem health`: can we reach the broker and the backend? */
export class HealthCommand extends ServiceCommand {
  static override paths = [['health']];
  static override usage = Command.Usage({
    category: 'Operations',
    description: 'Check that the broker and result backend answer; exit 69 if one does not',
    examples: [['Check Redis and Postgres', '$0 health --broker redis://localhost:6379 --backend postgres://postgres@localhost/postgres']],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const config = await this.loadConfig(this.serviceOverrides());
    return this.withStem(async (stem) => {
      const checks: Array<{ service: ServiceName; url: string; ok: boolean; ms: number; error?: string }> = [];
      const probe = async (service: ServiceName, url: string | undefined, call: () => Promise<unknown>): Promise<void> => {
        const started = Date.now();
        try {
          await call();
          checks.push({ service, url: url ? maskUrl(url) : 'memory', ok: true, ms: Date.now() - started });
        } catch (error) {
          checks.push({
            service,
            url: url ? maskUrl(url) : 'memory',
            ok: false,
            ms: Date.now() - started,
            error: (error as Error).message,
          });
        }
      };
      await probe('broker', config.urls.broker, () => stem.broker.pending(stem.settings.defaultQueue));
      await probe('backend', config.urls.backend, () => stem.backend.get(PROBE_ID));
      const workers = await stem.backend.listWorkers().catch(() => []);
      if (this.json) this.printJson({ checks, workers: workers.length });
      else {
        this.context.stdout.write(
          `${renderTable(
            this.context.stdout,
            ['service', 'url', 'ok', 'ms', 'error'],
            checks.map((c) => [c.service, c.url, c.ok ? 'yes' : 'NO', c.ms, c.error ?? '']),
          )}\n`,
        );
        this.context.stdout.write(`${workers.length} live worker(s)\n`);
      }
      return checks.every((check) => check.ok) ? ExitCode.ok : ExitCode.unavailable;
    });
  }
}
