import { readFileSync } from 'node:fs';
import { Builtins, Cli, type BaseContext, type CommandClass } from 'clipanion';
import { ExitCode } from '../sdk/errors.js';
import { builtinCommands } from './commands/index.js';
import { loadConfig } from './config/index.js';
import { colourEnabled } from './output/table.js';

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function configFileFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') return argv[i + 1];
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return undefined;
}

/** Commands contributed by the configured plugins and by stem.config.ts itself. */
async function configuredCommands(argv: readonly string[]): Promise<CommandClass<BaseContext>[]> {
  try {
    const config = await loadConfig({ configFile: configFileFlag(argv) });
    const fromPlugins = (config.plugins ?? []).flatMap((plugin) => plugin.commands ?? []);
    return [...fromPlugins, ...(config.commands ?? [])] as CommandClass<BaseContext>[];
  } catch {
    // A broken config is reported by the command that needs it, with its exit code.
    return [];
  }
}

/** Builds the CLI with the built-in commands and those the config contributes. */
export async function buildCli(argv: readonly string[]): Promise<Cli> {
  const cli = new Cli({ binaryName: 'stem', binaryLabel: 'Stem: a distributed task queue for Node.js', binaryVersion: packageJson.version, enableColors: colourEnabled(process.stdout) });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const registered = new Set<unknown>();
  for (const command of [...builtinCommands, ...(await configuredCommands(argv))]) {
    if (registered.has(command)) continue;
    registered.add(command);
    cli.register(command);
  }
  return cli;
}

/** Runs the stem CLI with `argv` (without node and the script); resolves to the exit status. */
export async function main(argv: string[], context: BaseContext = Cli.defaultContext): Promise<number> {
  const args = argv.length === 0 ? ['--help'] : argv;
  const cli = await buildCli(args);
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
