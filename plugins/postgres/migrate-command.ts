import { Command, Option } from 'clipanion';
import { ExitCode, StemError } from '../../sdk/errors.js';
import { maskUrl } from '../../sdk/url.js';
import { runMigrations } from './schema-migrator.js';

/** Where `stem migrate` applies migrations when given no --url: what the config's postgres plugins named. */
const configuredTargets = new Map<string, { url: string; schema: string }>();

/** Remembers a plugin's database so that `stem migrate` with no --url migrates it. */
export function registerMigrationTarget(url: string, schema: string): void {
  configuredTargets.set(`${url}\u0000${schema}`, { url, schema });
}

const URL_VARIABLES = ['STEM_RESULT_BACKEND_URL', 'STEM_BROKER_URL', 'STEM_SCHEDULE_STORE_URL', 'STEM_REVOKE_STORE_URL'] as const;

/**
 * `stem migrate`: applies the Postgres plugin's migrations (the plugin also runs them on start;
 * this is for deploy pipelines that run them once, before the workers, with `migrate: false`).
 */
export class MigrateCommand extends Command {
  static override paths = [['migrate']];

  static override usage = Command.Usage({
    category: 'Postgres',
    description: 'apply the Postgres plugin migrations',
    details: `
      Creates the schema if needed and applies every migration not applied yet, under an advisory
      lock, so that several processes may run it at once. Running it again does nothing.

      The database is --url, else the postgres plugins of the config, else the first postgres://
      URL among STEM_RESULT_BACKEND_URL, STEM_BROKER_URL, STEM_SCHEDULE_STORE_URL and STEM_REVOKE_STORE_URL.
    `,
    examples: [
      ['Migrate the database of the config', '$0 migrate'],
      ['Migrate a given database and schema', '$0 migrate --url postgres://postgres:postgres@localhost:5432/postgres --schema stem'],
    ],
  });

  /** The database URL. */
  url = Option.String('--url', { description: 'postgres:// URL of the database to migrate' });
  /** The schema. */
  schema = Option.String('--schema', { description: 'Schema that holds the tables (default stem)' });
  /** Read by the CLI frame to find the config; accepted here so that it is not an unknown option. */
  configFile = Option.String('--config', { description: 'Use this config file instead of searching for stem.config.ts' });

  /** Runs the migrations; exit 0, 64 without a database, 69 when the server is unreachable. */
  async execute(): Promise<number> {
    const targets = this.targets();
    if (targets.length === 0) {
      this.context.stderr.write('stem migrate: no Postgres database given; pass --url postgres://… or set STEM_RESULT_BACKEND_URL\n');
      return ExitCode.usage;
    }
    for (const { url, schema } of targets) {
      try {
        const applied = await runMigrations(url, schema);
        const what = applied.length === 0 ? 'already up to date' : `applied ${applied.join(', ')}`;
        this.context.stdout.write(`${maskUrl(url)} schema ${schema}: ${what}\n`);
      } catch (error) {
        this.context.stderr.write(`stem migrate: ${(error as Error).message}\n`);
        return error instanceof StemError ? error.exitCode : ExitCode.failure;
      }
    }
    return ExitCode.ok;
  }

  private targets(): Array<{ url: string; schema: string }> {
    if (this.url !== undefined) return [{ url: this.url, schema: this.schema ?? 'stem' }];
    if (configuredTargets.size > 0) {
      const seen = new Map<string, { url: string; schema: string }>();
      for (const target of configuredTargets.values()) {
        const schema = this.schema ?? target.schema;
        seen.set(`${target.url}\u0000${schema}`, { url: target.url, schema });
      }
      return [...seen.values()];
    }
    for (const name of URL_VARIABLES) {
      const url = process.env[name];
      if (url !== undefined && /^postgres(ql)?:\/\//.test(url)) return [{ url, schema: this.schema ?? 'stem' }];
    }
    return [];
  }
}
