import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { ClusterOptions, SentinelConnectionOptions } from 'ioredis';
import { ConfigError } from '../../sdk/errors.js';
import type { OptionKeys } from '../../sdk/option-keys.js';
import { maskUrl } from '../../sdk/url.js';

/** A server address: `'host:port'` or `{ host, port }`. */
export type RedisNodeAddress = string | { host: string; port: number };

/**
 * A Redis Cluster: seed nodes (any few of its masters or replicas; the rest is discovered) and any
 * ioredis `ClusterOptions` (natMap, scaleReads, slotsRefreshTimeout, redisOptions…). Stem sets
 * `lazyConnect` and `enableAutoPipelining` itself.
 */
export interface RedisClusterOptions extends Omit<ClusterOptions, 'lazyConnect' | 'enableAutoPipelining'> {
  /** Seed nodes, e.g. `['10.0.0.1:7000', '10.0.0.2:7000']`. */
  nodes: RedisNodeAddress[];
}

/**
 * A master watched by Redis Sentinel: the sentinels, the master's name in them, and any ioredis
 * sentinel options (sentinelPassword, natMap, failoverDetector…). Commands go to the master the
 * sentinels name; after a failover ioredis reconnects to the new one.
 */
export interface RedisSentinelOptions extends Omit<SentinelConnectionOptions, 'sentinels' | 'name' | 'role'> {
  /** The sentinels, e.g. `['10.0.0.1:26379', '10.0.0.2:26379', '10.0.0.3:26379']`. */
  sentinels: RedisNodeAddress[];
  /** The master group name (`sentinel monitor <name> …`). */
  name: string;
  /** The database index on the master. Default 0. */
  db?: number;
}

/** Options shared by every Redis service: where the server is and which key prefix to use. */
export interface RedisConnectionOptions {
  /**
   * `redis://[:password@]host:port[/db]` or `rediss://…` for TLS. Default `redis://127.0.0.1:6379`.
   * A cluster: `redis+cluster://[user:pass@]h1:7000,h2:7001`; a sentinel-watched master:
   * `redis+sentinel://[user:pass@]h1:26379,h2:26379/<master name>[/db]` (`rediss+…` for TLS).
   */
  url?: string;
  /** A Redis Cluster instead of one server (not with a `url` or `sentinel`). */
  cluster?: RedisClusterOptions;
  /** A master found through Redis Sentinel (not with a `url` or `cluster`). */
  sentinel?: RedisSentinelOptions;
  /**
   * Prefix of every key and channel, so several apps (or tests) share one Redis; `:` and `%` in it are percent-encoded in keys.
   * Default `stem`.
   */
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
  /**
   * List tasks that were enqueued and not yet started (`listTasks({ state: 'queued' })`): their
   * first state joins the listing index at enqueue. Default false: that is one more write on every
   * enqueue, more than the 5% an enqueue may lose (docs/benchmarks.md); queued tasks are then
   * listed once a worker has touched them (a retry, a return to the queue), and counted by
   * `stem queues list` meanwhile.
   */
  listQueued?: boolean;
}

/** Options of `redis()`: everything over one connection. */
export interface RedisPluginOptions extends RedisBrokerOptions, RedisResultBackendOptions {}

/** The keys of {@link RedisConnectionOptions}: what a single-service factory (`redisRevokeStore()`, …) accepts. */
export const REDIS_CONNECTION_OPTION_KEYS = {
  url: true,
  cluster: true,
  sentinel: true,
  namespace: true,
  connectTimeoutMs: true,
  username: true,
  password: true,
  tls: true,
} as const satisfies OptionKeys<RedisConnectionOptions>;

/** The keys of {@link RedisBrokerOptions}: what `redisBroker()` accepts. */
export const REDIS_BROKER_OPTION_KEYS = {
  ...REDIS_CONNECTION_OPTION_KEYS,
  blockMs: true,
  defaultVisibilityTimeoutMs: true,
  broadcastMaxLen: true,
  promoteBatch: true,
} as const satisfies OptionKeys<RedisBrokerOptions>;

/** The keys of {@link RedisResultBackendOptions}: what `redisResultBackend()` accepts. */
export const REDIS_RESULT_BACKEND_OPTION_KEYS = {
  ...REDIS_CONNECTION_OPTION_KEYS,
  resultTtlMs: true,
  listQueued: true,
} as const satisfies OptionKeys<RedisResultBackendOptions>;

/** The keys of {@link RedisPluginOptions}: what `redis()` accepts (connection, broker and backend options). */
export const REDIS_PLUGIN_OPTION_KEYS = {
  ...REDIS_BROKER_OPTION_KEYS,
  ...REDIS_RESULT_BACKEND_OPTION_KEYS,
} as const satisfies OptionKeys<RedisPluginOptions>;

/** Where the data lives: one server (the URL), a cluster, or a master found through sentinels. */
export type RedisTopology =
  | { kind: 'server' }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; options: Omit<RedisClusterOptions, 'nodes'> }
  | {
      kind: 'sentinel';
      sentinels: Array<{ host: string; port: number }>;
      name: string;
      db: number;
      options: Omit<RedisSentinelOptions, 'sentinels' | 'name' | 'db'>;
    };

/** The connection options after validation, with defaults filled in. */
export interface ResolvedConnectionOptions {
  /** The server URL (for a cluster or sentinel, the `redis+cluster://` or `redis+sentinel://` form, for messages). */
  url: string;
  /** One server, a cluster or sentinels. */
  topology: RedisTopology;
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
  const given = [
    options?.url !== undefined && 'url',
    options?.cluster !== undefined && 'cluster',
    options?.sentinel !== undefined && 'sentinel',
  ];
  const chosen = given.filter((name): name is string => name !== false);
  if (chosen.length > 1) {
    throw new ConfigError(`${plugin}: options ${chosen.map((name) => `"${name}"`).join(' and ')} are exclusive; give one`);
  }
  const rawUrl = options?.url ?? DEFAULT_URL;
  if (typeof rawUrl !== 'string') throw new ConfigError(`${plugin}: option "url" must be a string like redis://127.0.0.1:6379`);
  let topology: RedisTopology = { kind: 'server' };
  let url = rawUrl;
  let tlsScheme = false;
  let urlCredentials: { username: string; password: string } = { username: '', password: '' };
  if (options?.cluster !== undefined) {
    topology = clusterTopology(options.cluster, plugin);
    url = `redis+cluster://${topology.nodes.map((node) => `${node.host}:${node.port}`).join(',')}`;
  } else if (options?.sentinel !== undefined) {
    topology = sentinelTopology(options.sentinel, plugin);
    url = `redis+sentinel://${topology.sentinels.map((node) => `${node.host}:${node.port}`).join(',')}/${topology.name}/${topology.db}`;
  } else if (/^rediss?\+(cluster|sentinel):/i.test(rawUrl)) {
    const multi = parseMultiHostUrl(rawUrl, plugin);
    topology = multi.topology;
    tlsScheme = multi.tls;
    urlCredentials = multi.credentials;
  }
  if (topology.kind !== 'server') return finishResolve(options, plugin, url, topology, tlsScheme, urlCredentials);
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
  return finishResolve(options, plugin, url, topology, parsed.protocol === 'rediss:', {
    username: parsed.username,
    password: parsed.password,
  });
}

/** The options every topology shares: namespace, timeout, credentials, TLS. */
function finishResolve(
  options: RedisConnectionOptions | undefined,
  plugin: string,
  url: string,
  topology: RedisTopology,
  tlsScheme: boolean,
  urlCredentials: { username: string; password: string },
): ResolvedConnectionOptions {
  const namespace = options?.namespace ?? 'stem';
  if (typeof namespace !== 'string' || namespace === '' || /[{}\s]/.test(namespace)) {
    throw new ConfigError(
      `${plugin}: option "namespace" must be a non-empty string without braces or spaces (got ${JSON.stringify(namespace)})`,
    );
  }
  const resolved: ResolvedConnectionOptions = {
    url,
    topology,
    namespace,
    connectTimeoutMs: positiveInteger(options?.connectTimeoutMs, 5_000, 'connectTimeoutMs', plugin),
  };
  for (const key of ['username', 'password'] as const) {
    const value = options?.[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') throw new ConfigError(`${plugin}: option "${key}" must be a non-empty string`);
    if (urlCredentials[key] !== '') {
      throw new ConfigError(`${plugin}: the ${key} is given twice, in option "${key}" and in the URL (${maskUrl(url)}); keep one`);
    }
    resolved[key] = value;
  }
  const tls = options?.tls;
  if (tls !== undefined && typeof tls !== 'boolean' && (typeof tls !== 'object' || tls === null)) {
    throw new ConfigError(`${plugin}: option "tls" must be true, false or an object of node tls options like { ca, servername }`);
  }
  if (tls === false && tlsScheme) {
    throw new ConfigError(`${plugin}: option "tls" is false but the URL is rediss:// (always TLS); use redis:// for plain TCP`);
  }
  if (typeof tls === 'object') resolved.tls = { ...tls };
  else if (tls === true || tlsScheme) resolved.tls = {};
  // ioredis reads a server URL's credentials itself; a cluster or sentinel URL is ours to read
  if (topology.kind !== 'server') {
    if (urlCredentials.username !== '') resolved.username ??= urlCredentials.username;
    if (urlCredentials.password !== '') resolved.password ??= urlCredentials.password;
  }
  return resolved;
}

/** `'host:port'` or `{ host, port }` as an address; throws ConfigError naming `option`. */
function nodeAddress(node: unknown, option: string, plugin: string): { host: string; port: number } {
  if (typeof node === 'string') {
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(node.trim());
    if (match !== null) return { host: match[1]!, port: Number(match[2]) };
  } else if (typeof node === 'object' && node !== null) {
    const { host, port } = node as { host?: unknown; port?: unknown };
    if (typeof host === 'string' && host !== '' && typeof port === 'number' && Number.isInteger(port) && port > 0) return { host, port };
  }
  throw new ConfigError(`${plugin}: option "${option}" holds ${JSON.stringify(node)}; give "host:port" or { host, port }`);
}

function clusterTopology(cluster: RedisClusterOptions, plugin: string): Extract<RedisTopology, { kind: 'cluster' }> {
  if (typeof cluster !== 'object' || cluster === null || !Array.isArray(cluster.nodes) || cluster.nodes.length === 0) {
    throw new ConfigError(`${plugin}: option "cluster" needs nodes, e.g. { nodes: ['127.0.0.1:7000', '127.0.0.1:7001'] }`);
  }
  const { nodes, ...rest } = cluster;
  return { kind: 'cluster', nodes: nodes.map((node) => nodeAddress(node, 'cluster.nodes', plugin)), options: rest };
}

function sentinelTopology(sentinel: RedisSentinelOptions, plugin: string): Extract<RedisTopology, { kind: 'sentinel' }> {
  if (typeof sentinel !== 'object' || sentinel === null || !Array.isArray(sentinel.sentinels) || sentinel.sentinels.length === 0) {
    throw new ConfigError(
      `${plugin}: option "sentinel" needs sentinels and a name, e.g. { sentinels: ['127.0.0.1:26379'], name: 'mymaster' }`,
    );
  }
  const { sentinels, name, db, ...rest } = sentinel;
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(`${plugin}: option "sentinel.name" must be the master's name in the sentinels (sentinel monitor <name> …)`);
  }
  if (db !== undefined && (!Number.isInteger(db) || db < 0)) {
    throw new ConfigError(`${plugin}: option "sentinel.db" must be a database index (got ${JSON.stringify(db)})`);
  }
  return {
    kind: 'sentinel',
    sentinels: sentinels.map((node) => nodeAddress(node, 'sentinel.sentinels', plugin)),
    name,
    db: db ?? 0,
    options: rest,
  };
}

/**
 * Reads `redis+cluster://[user:pass@]h1:p1,h2:p2` and `redis+sentinel://[user:pass@]h1:p1,h2:p2/<name>[/db]`
 * (`rediss+…` for TLS). The credentials are the data nodes' (the master's for sentinel).
 */
function parseMultiHostUrl(
  url: string,
  plugin: string,
): { topology: RedisTopology; tls: boolean; credentials: { username: string; password: string } } {
  const match = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/i.exec(url);
  const kind = match?.[2]?.toLowerCase();
  const usage =
    kind === 'sentinel'
      ? 'redis+sentinel://host1:26379,host2:26379/<master name>[/db]'
      : 'redis+cluster://host1:7000,host2:7001 (no database index: a cluster has db 0 only)';
  if (match === null) throw new ConfigError(`${plugin}: option "url" (${maskUrl(url)}) is malformed; use ${usage}`);
  const [, scheme, , userinfo, hostList, path] = match;
  const credentials = { username: '', password: '' };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    credentials.username = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    credentials.password = colon === -1 ? '' : decodeURIComponent(userinfo.slice(colon + 1));
  }
  const nodes = hostList!.split(',').map((node) => nodeAddress(node, 'url', plugin));
  const parts = (path ?? '').split('/').filter((part) => part !== '');
  const tls = scheme!.toLowerCase() === 'rediss';
  if (kind === 'cluster') {
    if (parts.length > 0) throw new ConfigError(`${plugin}: option "url" (${maskUrl(url)}) has a path; use ${usage}`);
    return { topology: { kind: 'cluster', nodes, options: {} }, tls, credentials };
  }
  const [name, db, ...extra] = parts;
  if (name === undefined || extra.length > 0 || (db !== undefined && !/^\d+$/.test(db))) {
    throw new ConfigError(`${plugin}: option "url" (${maskUrl(url)}) must name the master; use ${usage}`);
  }
  return {
    topology: { kind: 'sentinel', sentinels: nodes, name: decodeURIComponent(name), db: Number(db ?? 0), options: {} },
    tls,
    credentials,
  };
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
  if (options?.listQueued !== undefined && typeof options.listQueued !== 'boolean') {
    throw new ConfigError(`${plugin}: option "listQueued" must be true or false (got ${JSON.stringify(options.listQueued)})`);
  }
  return positiveInteger(options?.resultTtlMs, 86_400_000, 'resultTtlMs', plugin);
}
