import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ConfigError } from '../../sdk/errors.js';
import { maskUrl } from '../../sdk/url.js';

/** Options shared by every Redis service: where the server is and which key prefix to use. */
export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` for TLS. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prefix of every key and channel, so several apps (or tests) share one Redis; `:` and `%` in it are percent-encoded in keys. Default `stem`. */
  namespace?: string;
  /** How long the first connection may take before startup fails (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** ACL user, when it is not in the URL (`redis://user:pass@host`); keeps the secret out of URLs. */
  username?: string;
  /** Password (AUTH), when it is not in the URL. */
  password?: string;
  /** TLS: `true`, or node `tls.connect` options (ca, cert, key, servername, rejectUnauthorized). `rediss://` turns it on by itself. */
  tls?: boolean | TlsOptions;
}

/** Options of the Streams broker. */
export interface RedisBrokerOptions extends RedisConnectionOptions {
  /** Longest single BLOCK of an idle consumer (ms); it also wakes for due delayed tasks and expiring leases. Default 5000. */
  blockMs?: number;
  /** Lease of a stream entry that carries no visibility timeout (a hand-written entry) (ms). Default 30000. */
  defaultVisibilityTimeoutMs?: number;
  /** Approximate number of entries a broadcast stream keeps (XADD MAXLEN ~). Default 10000. */
  broadcastMaxLen?: number;
  /** At most this many due delayed tasks are moved to their stream per fetch. Default 1000. */
  promoteBatch?: number;
}

/** Options of the result backend. */
export interface RedisResultBackendOptions extends RedisConnectionOptions {
  /** How long task states, groups and chord claims are kept (ms). Default one day. */
  resultTtlMs?: number;
}

/** Options of `redis()`: everything over one connection. */
export interface RedisPluginOptions extends RedisBrokerOptions, RedisResultBackendOptions {}

/** The connection options after validation, with defaults filled in. */
export interface ResolvedConnectionOptions {
  /** The server URL. */
  url: string;
  /** The key prefix. */
  namespace: string;
  /** Startup connect timeout (ms). */
  connectTimeoutMs: number;
  /** ACL user given as an option (the URL's wins when both are given). */
  username?: string;
  /** Password given as an option. */
  password?: string;
  /** TLS options: set for `rediss://` URLs and the `tls` option; undefined means plain TCP. */
  tls?: TlsOptions;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** Validates the connection options of a Redis plugin factory; throws ConfigError naming the option. */
export function resolveConnectionOptions(options: RedisConnectionOptions | undefined, plugin: string): ResolvedConnectionOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new ConfigError(`${plugin}: options must be an object like { url: 'redis://127.0.0.1:6379' }`);
  }
  const url = options?.url ?? DEFAULT_URL;
  if (typeof url !== 'string') throw new ConfigError(`${plugin}: option "url" must be a string like redis://127.0.0.1:6379`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${plugin}: option "url" (${maskUrl(url)}) is not a URL; use redis://host:port[/db] or rediss://host:port[/db]`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`${plugin}: option "url" must start with redis:// or rediss:// (got ${parsed.protocol}//)`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new ConfigError(`${plugin}: option "url" has "/${db}" as database index; use a number, e.g. redis://127.0.0.1:6379/1`);
  }
  const namespace = options?.namespace ?? 'stem';
  if (typeof namespace !== 'string' || namespace === '' || /[{}\s]/.test(namespace)) {
    throw new ConfigError(
      `${plugin}: option "namespace" must be a non-empty string without braces or spaces (got ${JSON.stringify(namespace)})`,
    );
  }
  const resolved: ResolvedConnectionOptions = {
    url,
    namespace,
    connectTimeoutMs: positiveInteger(options?.connectTimeoutMs, 5_000, 'connectTimeoutMs', plugin),
  };
  for (const key of ['username', 'password'] as const) {
    const value = options?.[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') throw new ConfigError(`${plugin}: option "${key}" must be a non-empty string`);
    if ((key === 'username' ? parsed.username : parsed.password) !== '') {
      throw new ConfigError(`${plugin}: the ${key} is given twice, in option "${key}" and in the URL (${maskUrl(url)}); keep one`);
    }
    resolved[key] = value;
  }
  const tls = options?.tls;
  if (tls !== undefined && typeof tls !== 'boolean' && (typeof tls !== 'object' || tls === null)) {
    throw new ConfigError(`${plugin}: option "tls" must be true, false or an object of node tls options like { ca, servername }`);
  }
  if (tls === false && parsed.protocol === 'rediss:') {
    throw new ConfigError(`${plugin}: option "tls" is false but the URL is rediss:// (always TLS); use redis:// for plain TCP`);
  }
  if (typeof tls === 'object') resolved.tls = { ...tls };
  else if (tls === true || parsed.protocol === 'rediss:') resolved.tls = {};
  return resolved;
}

/** Reads an optional positive integer option, or throws ConfigError naming it. */
export function positiveInteger(value: unknown, fallback: number, option: string, plugin: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`${plugin}: option "${option}" must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Broker options after validation. */
export interface ResolvedBrokerOptions {
  /** See {@link RedisBrokerOptions.blockMs}. */
  blockMs: number;
  /** See {@link RedisBrokerOptions.defaultVisibilityTimeoutMs}. */
  defaultVisibilityTimeoutMs: number;
  /** See {@link RedisBrokerOptions.broadcastMaxLen}. */
  broadcastMaxLen: number;
  /** See {@link RedisBrokerOptions.promoteBatch}. */
  promoteBatch: number;
}

/** Validates the broker's own options; throws ConfigError naming the option. */
export function resolveBrokerOptions(options: RedisBrokerOptions | undefined, plugin = 'redisBroker'): ResolvedBrokerOptions {
  return {
    blockMs: positiveInteger(options?.blockMs, 5_000, 'blockMs', plugin),
    defaultVisibilityTimeoutMs: positiveInteger(options?.defaultVisibilityTimeoutMs, 30_000, 'defaultVisibilityTimeoutMs', plugin),
    broadcastMaxLen: positiveInteger(options?.broadcastMaxLen, 10_000, 'broadcastMaxLen', plugin),
    promoteBatch: positiveInteger(options?.promoteBatch, 1_000, 'promoteBatch', plugin),
  };
}

/** Validates the result backend's own options; returns the result TTL (ms). */
export function resolveResultTtl(options: RedisResultBackendOptions | undefined, plugin = 'redisResultBackend'): number {
  return positiveInteger(options?.resultTtlMs, 86_400_000, 'resultTtlMs', plugin);
}
