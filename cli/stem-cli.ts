import { Builtins, Cli, type BaseContext, type Command, type CommandClass } from 'clipanion';
import { UsageError } from '../sdk/errors.js';

/**
 * What `--help` shows for an option's value, by option name. clipanion 3 prints `#0` and has no
 * setting for it (arcanis/clipanion#173), so the CLI rewrites the usage lines it builds. A command
 * may add or override names with `static valuePlaceholders = { '--mode': '<warm|hard>' }`.
 */
const VALUE_PLACEHOLDERS: Record<string, string> = {
  '--args': '<json>',
  '--args-file': '<file|->',
  '--headers': '<json>',
  '--broker': '<url>',
  '--backend': '<url>',
  '--store': '<url>',
  '--url': '<url>',
  '--revoke-store': '<url>',
  '--registry': '<file>',
  '--routing-config': '<file>',
  '--config': '<file>',
  '--namespace': '<name>',
  '--schema': '<name>',
  '--hostname': '<name>',
  '--queue': '<queue>',
  '--queues': '<queue,…>',
  '--broadcasts': '<channel,…>',
  '--ids': '<id,…>',
  '--worker': '<id|host>',
  '--priority': '<0-9>',
  '--not-before': '<delay|iso-time>',
  '--from': '<iso-time>',
  '--timeout': '<duration>',
  '--delay': '<duration>',
  '--tick': '<duration>',
  '--lock-ttl': '<duration>',
  '--shutdown-grace': '<duration>',
  '--max-retries': '<n>',
  '--count': '<n>',
  '--limit': '<n>',
  '--offset': '<n>',
  '--concurrency': '<n>',
  '--prefetch-multiplier': '<n>',
  '--autoscale': '<min:max>',
  '--spec': '<cron|every:30s>',
  '--timezone': '<tz>',
  '--reason': '<text>',
  '--mode': '<warm|hard>',
  '--log-format': '<text|json>',
};

/** Commands that plugins contribute, and how to get them when the config has no such plugin. */
const PLUGIN_COMMANDS: Record<string, string> = {
  migrate:
    '"stem migrate" comes with the postgres plugin, which this config does not load: set STEM_BROKER_URL or ' +
    'STEM_RESULT_BACKEND_URL to a postgres:// URL, or add postgres({ url }) to the plugins of stem.config.ts',
};

/** A command class that may name its own value placeholders. */
type WithPlaceholders = { valuePlaceholders?: Record<string, string> };

/** The shape of clipanion's per-command usage (CommandBuilder.usage). */
type UsageResult = { usage: string; options: Array<{ definition: string; description: string; required: boolean }> };
type UsageBuilder = { usage(opts?: object): UsageResult; options?: Array<{ names: string[]; arity: number }> };

/** Replaces clipanion's `#0` after each option name with what the value is. */
function withPlaceholders(text: string, own: Record<string, string>): string {
  return text.replace(/(-[-\w]*(?:,-[-\w]*)*) #0/g, (_, names: string) => {
    const first = names.split(',').find((name) => name.startsWith('--')) ?? names.split(',')[0]!;
    return `${names} ${own[first] ?? VALUE_PLACEHOLDERS[first] ?? '<value>'}`;
  });
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/**
 * The stem binary's clipanion Cli: help shows real value placeholders (`--args <json>`), a negative
 * number after an option is its value (`--priority -1` reaches the command, which names the range),
 * and a command that does not exist is one line listing the commands that do.
 */
export class StemCli<Context extends BaseContext = BaseContext> extends Cli<Context> {
  /** Names of the options that take a value, across every registered command. */
  private readonly valueOptions = new Set<string>();

  override register(commandClass: CommandClass<Context>): void {
    super.register(commandClass);
    const record = this.registrations.get(commandClass);
    if (record === undefined) return;
    const builder = record.builder as unknown as UsageBuilder;
    for (const option of builder.options ?? []) if (option.arity > 0) for (const name of option.names) this.valueOptions.add(name);
    const own = (commandClass as unknown as WithPlaceholders).valuePlaceholders ?? {};
    const usage = builder.usage.bind(builder);
    builder.usage = (opts) => {
      const result = usage(opts);
      return {
        usage: withPlaceholders(result.usage, own),
        options: result.options.map((option) => ({ ...option, definition: withPlaceholders(option.definition, own) })),
      };
    };
  }

  // clipanion declares process() with two overloads of the context; one loose signature covers both.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override process(input: string[], context?: any): Command<Context> {
    const args = this.bindNegativeValues(input);
    if (this.isPlainHelp(args)) {
      // What clipanion's process() returns for it, without compiling the state machine of every command (a large part of `stem
      // --help`'s time).
      const help = new Builtins.HelpCommand();
      help.context = { ...Cli.defaultContext, ...context };
      help.path = [...args];
      return help as Command<Context>;
    }
    try {
      return super.process(args, context);
    } catch (error) {
      throw this.explainUnknownCommand(error, args);
    }
  }

  /** `stem --help` or `stem -h` alone, with the built-in help command registered and no other command that could take that token. */
  private isPlainHelp(args: string[]): boolean {
    if (args.length !== 1 || (args[0] !== '--help' && args[0] !== '-h')) return false;
    let help = false;
    for (const command of this.registrations.keys()) {
      const paths = command.paths ?? [];
      if (command === (Builtins.HelpCommand as unknown)) help = true;
      else if (paths.length === 0 || paths.some((path) => path.length === 0 || path[0] === args[0])) return false;
    }
    return help;
  }

  /** `--priority -1` → `--priority=-1`: clipanion reads any `-…` token as an option of its own. */
  private bindNegativeValues(input: string[]): string[] {
    const args: string[] = [];
    for (let i = 0; i < input.length; i++) {
      const arg = input[i]!;
      if (arg === '--') {
        args.push(...input.slice(i));
        break;
      }
      const next = input[i + 1];
      if (this.valueOptions.has(arg) && next !== undefined && /^-(\d|\.\d)/.test(next)) {
        args.push(`${arg}=${next}`);
        i++;
      } else args.push(arg);
    }
    return args;
  }

  /** Turns clipanion's "Command not found; did you mean one of:" into one line that helps. */
  private explainUnknownCommand(error: unknown, args: string[]): unknown {
    if (!(error instanceof Error) || error.name !== 'UnknownSyntaxError' || !/^Command not found/.test(error.message)) return error;
    const optionAt = args.findIndex((arg) => arg.startsWith('-'));
    const typed = optionAt < 0 ? args : args.slice(0, optionAt);
    const paths = [...this.registrations.keys()].flatMap((command) => command.paths ?? []).filter((path) => path.length > 0);
    const first = typed[0];
    if (first === undefined) return error;
    const plugin = PLUGIN_COMMANDS[first];
    if (plugin !== undefined && !paths.some((path) => path[0] === first)) return new UsageError(plugin);
    const sub = paths.filter((path) => path[0] === first && path.length > 1).map((path) => path.slice(1).join(' '));
    if (sub.length > 0) {
      const given = typed.slice(1).join(' ');
      return new UsageError(
        `${given === '' ? `"stem ${first}" needs a subcommand` : `"stem ${first}" has no subcommand "${given}"`}: ` +
          `${[...new Set(sub)].sort().join(', ')}`,
      );
    }
    const groups = [...new Set(paths.map((path) => path[0]!).filter((name) => !name.startsWith('-')))].sort();
    const near = groups.filter((group) => distance(group, first) <= 2 || group.startsWith(first) || first.startsWith(group));
    const hint = near.length > 0 ? `did you mean ${near.map((group) => `"${group}"`).join(' or ')}? ` : '';
    return new UsageError(`unknown command "${typed.join(' ')}"; ${hint}the commands are: ${groups.join(', ')}`);
  }
}
