import { Command, Option } from 'clipanion';
import type { Stem } from '../sdk/kernel.js';
import { loadConfig, type ConfigOverrides, type ResolvedConfig } from './config/index.js';
import { reportError, reportErrorAsJson } from './report-error.js';

/**
 * The base of every stem command: `--verbose`, config loading (the global `--config FILE` reaches
 * it as STEM_CONFIG, see cli/main.ts), and error
 * reporting as one line with the right exit code. Subclasses implement `run()`.
 */
export abstract class StemCommand extends Command {
  /** Print stack traces. */
  verbose = Option.Boolean('--verbose', false, { description: 'Print stack traces of errors' });

  /** The command's work; returns the exit status (0 when undefined). */
  abstract run(): Promise<number | void>;

  /** Loads the config as the CLI resolves it: file, then STEM_* variables, then this command's flags. */
  protected loadConfig(overrides: ConfigOverrides = {}): Promise<ResolvedConfig> {
    return loadConfig({ env: process.env, overrides });
  }

  /** Loads the config and creates a Stem from it. */
  protected async createStem(overrides: ConfigOverrides = {}): Promise<Stem> {
    const config = await this.loadConfig(overrides);
    // The kernel loads when a command needs it, not when the CLI starts (`stem --help` never does).
    const { Stem } = await import('../sdk/kernel.js');
    return Stem.create(config);
  }

  async execute(): Promise<number> {
    return (await this.run()) ?? 0;
  }

  override async validateAndExecute(): Promise<number> {
    try {
      return await super.validateAndExecute();
    } catch (error) {
      // A command's --json output is JSON, its errors included.
      if ((this as { json?: unknown }).json === true) return reportErrorAsJson(error, this.context.stdout, this.verbose);
      return reportError(error, this.context.stderr, this.verbose);
    }
  }
}
