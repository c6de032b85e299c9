import { createRequire } from 'node:module';
import { Builtins, Cli, type BaseContext, type CommandClass } from 'clipanion';
import { ExitCode } from '../sdk/errors.js';
import { builtinCommands } from './commands/index.js';
import { loadConfig } from './config/index.js';
import { colourEnabled } from './output/table.js';
import { StemCli } from './stem-cli.js';

// By the package's own name: this file runs from cli/ in a checkout and from dist/cli/ when installed.
const packageJson = createRequire(import.meta.url)('stem/package.json') as { version: string };

/**
 * Takes the global `--config FILE` out of the arguments: it applies to every command (built-in,
 * plugin or project ones, and --help), so it travels as STEM_CONFIG, which loadConfig reads.
 */
function extractConfigFlag(argv: readonly string[]): { args: string[]; configFile?: string } {
  const args: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    if (arg === '--config' && i + 1 < argv.length) configFile = argv[++i];
    else if (arg.startsWith('--config=')) configFile = arg.slice('--config='.length);
    else args.push(arg);
  }
  return configFile === undefined ? { args } : { args, configFile };
}

/** Commands contributed by the configured plugins and by stem.config.ts itself. */
async function configuredCommands(): Promise<CommandClass<BaseContext>[]> {
  try {
    const config = await loadConfig();
    const fromPlugins = (config.plugins ?? []).flatMap((plugin) => plugin.commands ?? []);
    return [...fromPlugins, ...(config.commands ?? [])] as CommandClass<BaseContext>[];
  } catch {
    // A broken config is reported by the command that needs it, with its exit code.
    return [];
  }
}

/** Builds the CLI with the built-in commands and those the config contributes. */
export async function buildCli(): Promise<Cli> {
  const cli = new StemCli({
    binaryName: 'stem',
    binaryLabel: 'Stem: a distributed task queue for Node.js (every command takes --config FILE)',
    binaryVersion: packageJson.version,
    enableColors: colourEnabled(process.stdout),
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const registered = new Set<unknown>();
  for (const command of [...builtinCommands, ...(await configuredCommands())]) {
    if (registered.has(command)) continue;
    registered.add(command);
    cli.register(command);
  }
  return cli;
}

/** Runs the stem CLI with `argv` (without node and the script); resolves to the exit status. */
export async function main(argv: string[], context: BaseContext = Cli.defaultContext): Promise<number> {
  const { args: rest, configFile } = extractConfigFlag(argv);
  if (configFile !== undefined) process.env.STEM_CONFIG = configFile;
  const args = rest.length === 0 ? ['--help'] : rest;
  const cli = await buildCli();
  let command;
  try {
    command = cli.process(args, context);
  } catch (error) {
    const message = (error as Error).message.split('\n').find((line) => line.trim() !== '') ?? String(error);
    context.stderr.write(`stem: ${message.trim()} (run "stem --help" for usage)\n`);
    return ExitCode.usage;
  }
  return cli.run(command, context);
}
