import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

/** The Lua scripts in lua/, by file name. */
export type ScriptName =
  | 'fetch'
  | 'busy-read'
  | 'settle'
  | 'lease'
  | 'set-states'
  | 'first-state'
  | 'requeue'
  | 'delay'
  | 'dead-letter'
  | 'queue-counts'
  | 'purge'
  | 'group-record'
  | 'chord-claim'
  | 'lock-renew'
  | 'lock-release'
  | 'rate-acquire'
  | 'revoke-upsert'
  | 'revoke-prune'
  | 'schedule-upsert'
  | 'schedule-remove'
  | 'gate-publish'
  | 'gate-release'
  | 'bounded-publish';

const NAMES: readonly ScriptName[] = [
  'fetch',
  'busy-read',
  'settle',
  'lease',
  'set-states',
  'first-state',
  'requeue',
  'delay',
  'dead-letter',
  'queue-counts',
  'purge',
  'group-record',
  'chord-claim',
  'lock-renew',
  'lock-release',
  'rate-acquire',
  'revoke-upsert',
  'revoke-prune',
  'schedule-upsert',
  'schedule-remove',
  'gate-publish',
  'gate-release',
  'bounded-publish',
];

/** A script's source and its SHA1 (the name the server caches it under). */
interface ScriptSource {
  lua: string;
  sha: string;
}

/**
 * The plugin's Lua scripts, read from disk once per process. A call is an EVALSHA, with an EVAL
 * when the server does not know the script (restart, SCRIPT FLUSH); a pipeline loads a script
 * with SCRIPT LOAD just before its first EVALSHA on a connection. Not ioredis `defineCommand`:
 * ioredis copies every defined command onto each pipeline it makes (one per event-loop turn with
 * auto-pipelining), which made a pipeline cost kilobytes of garbage.
 */
export class LuaScripts {
  private static sources: Map<ScriptName, ScriptSource> | undefined;
  /** The scripts each connection has loaded since it last connected. */
  private static readonly loaded = new WeakMap<Redis | Cluster, Set<string>>();
  /** The positions of the SCRIPT LOAD commands queue() added to a pipeline (their replies are not the caller's). */
  private static readonly loadsOf = new WeakMap<ChainableCommander, Set<number>>();
  /** The connection of each pipeline a script was queued on. */
  private static readonly clientOf = new WeakMap<ChainableCommander, Redis | Cluster>();

  /** Prepares `client` for script calls: what it has loaded is forgotten whenever it (re)connects. */
  static install(client: Redis): void {
    if (LuaScripts.loaded.has(client)) return;
    const loaded = new Set<string>();
    LuaScripts.loaded.set(client, loaded);
    client.on('ready', () => loaded.clear());
  }

  /** Runs a script on `client` (on a cluster, on the node of its keys' slot) and resolves with its reply. */
  static async call(
    client: Redis | Cluster,
    name: ScriptName,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
  ): Promise<unknown> {
    const script = LuaScripts.source(name);
    try {
      return await client.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      LuaScripts.loaded.get(client)?.delete(script.sha);
      return client.eval(script.lua, keys.length, ...keys, ...args);
    }
  }

  /**
   * Queues a script call on a pipeline or transaction of `client`. Should the server have lost
   * the script anyway (SCRIPT FLUSH without a reconnect), the pipeline fails with NOSCRIPT; the
   * next one loads it again. A cluster client is never installed: its pipelines carry no SCRIPT
   * LOAD (it would go to a random node), and execPipeline answers NOSCRIPT with EVAL.
   */
  static queue(
    client: Redis | Cluster,
    pipeline: ChainableCommander,
    name: ScriptName,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
  ): void {
    const script = LuaScripts.source(name);
    const loaded = LuaScripts.loaded.get(client);
    if (loaded !== undefined && !loaded.has(script.sha)) {
      let loads = LuaScripts.loadsOf.get(pipeline);
      if (loads === undefined) LuaScripts.loadsOf.set(pipeline, (loads = new Set()));
      loads.add(pipeline.length);
      pipeline.script('LOAD', script.lua);
      loaded.add(script.sha);
    }
    LuaScripts.clientOf.set(pipeline, client);
    // a MULTI on a cluster cannot be retried in part after NOSCRIPT: it carries the script itself
    if (loaded === undefined && isTransaction(pipeline)) pipeline.eval(script.lua, keys.length, ...keys, ...args);
    else pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
  }

  /** The positions of the replies to SCRIPT LOAD commands queue() added to `pipeline`, if any. */
  static loadReplies(pipeline: ChainableCommander): ReadonlySet<number> | undefined {
    return LuaScripts.loadsOf.get(pipeline);
  }

  /** After a NOSCRIPT reply in `pipeline`: its connection loads its scripts again in the next one. */
  static lost(pipeline: ChainableCommander): void {
    const client = LuaScripts.clientOf.get(pipeline);
    if (client !== undefined) LuaScripts.loaded.get(client)?.clear();
  }

  /** The Lua text of a script by its SHA1, if it is one of ours. */
  static sourceOf(sha: string): string | undefined {
    LuaScripts.source('fetch');
    for (const script of LuaScripts.sources!.values()) if (script.sha === sha) return script.lua;
    return undefined;
  }

  private static source(name: ScriptName): ScriptSource {
    const sources = (LuaScripts.sources ??= new Map(
      NAMES.map((script) => {
        const lua = withIncludes(readFileSync(new URL(`./lua/${script}.lua`, import.meta.url), 'utf8'));
        return [script, { lua, sha: createHash('sha1').update(lua).digest('hex') }];
      }),
    ));
    return sources.get(name)!;
  }
}

/** True for a MULTI (ioredis queues the MULTI command first). */
function isTransaction(pipeline: ChainableCommander): boolean {
  return (pipeline as unknown as { _queue?: Array<{ name: string }> })._queue?.[0]?.name === 'multi';
}

/** True for the server's "no script by that SHA1" reply. */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * A script with each `--#include NAME` line replaced by lua/include/NAME.lua: what two scripts
 * share is written once, and every script still runs on its own (the server has no imports).
 */
function withIncludes(lua: string): string {
  return lua.replace(/^--#include ([a-z-]+)$/gm, (_line, name: string) =>
    readFileSync(new URL(`./lua/include/${name}.lua`, import.meta.url), 'utf8').trimEnd(),
  );
}
