import { readFileSync } from 'node:fs';
import type { ChainableCommander, Redis } from 'ioredis';

/** The Lua scripts in lua/, by file name. */
export type ScriptName =
  | 'fetch'
  | 'settle'
  | 'requeue'
  | 'dead-letter'
  | 'queue-counts'
  | 'purge'
  | 'group-record'
  | 'lock-renew'
  | 'lock-release'
  | 'rate-acquire'
  | 'revoke-upsert'
  | 'revoke-prune'
  | 'schedule-upsert'
  | 'schedule-remove';

const NAMES: readonly ScriptName[] = [
  'fetch', 'settle', 'requeue', 'dead-letter', 'queue-counts', 'purge', 'group-record', 'lock-renew',
  'lock-release', 'rate-acquire', 'revoke-upsert', 'revoke-prune', 'schedule-upsert', 'schedule-remove',
];

type ScriptCall = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => unknown;

/**
 * The plugin's Lua scripts, read from disk once per process and installed on every connection
 * with ioredis `defineCommand`: each call is an EVALSHA, with a transparent EVAL when the server
 * lost its script cache (restart, SCRIPT FLUSH).
 */
export class LuaScripts {
  private static sources: Map<ScriptName, string> | undefined;

  /** Defines every script as a command of `client` (idempotent per client). */
  static install(client: Redis): void {
    const sources = (LuaScripts.sources ??= new Map(
      NAMES.map((name) => [name, readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')]),
    ));
    for (const [name, lua] of sources) {
      if (typeof (client as unknown as Record<string, unknown>)[commandName(name)] !== 'function') {
        client.defineCommand(commandName(name), { lua });
      }
    }
  }

  /** Runs a script on `client` and resolves with its reply. */
  static call(client: Redis, name: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return LuaScripts.command(client, name)(keys.length, ...keys, ...args) as Promise<unknown>;
  }

  /** Queues a script call on a pipeline or transaction. */
  static queue(pipeline: ChainableCommander, name: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): void {
    LuaScripts.command(pipeline, name)(keys.length, ...keys, ...args);
  }

  private static command(target: Redis | ChainableCommander, name: ScriptName): ScriptCall {
    const call = (target as unknown as Record<string, ScriptCall | undefined>)[commandName(name)];
    if (call === undefined) throw new Error(`Lua script ${name} is not installed on this connection`);
    return call.bind(target);
  }
}

function commandName(name: ScriptName): string {
  return `stem_${name.replace(/-/g, '_')}`;
}
