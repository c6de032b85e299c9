import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { ClosedError, ServiceUnavailableError } from '../../sdk/errors.js';
import { LuaScripts, isNoScript } from './lua-scripts.js';
import { maskUrl } from '../../sdk/url.js';
import type { ResolvedConnectionOptions } from './redis-options.js';

/**
 * One ioredis connection to a Redis server, shared by the services of one plugin: opened (and
 * checked) at startup, reconnected by ioredis at run time, closed when its last user releases it.
 * Blocking reads and pub/sub get their own connections through {@link RedisConnection.duplicate}.
 */
export class RedisConnection {
  /** The command connection (auto-pipelined: commands issued in the same tick share one write). */
  readonly client: Redis;
  /** The key prefix of every service on this connection. */
  readonly namespace: string;
  /** The URL with the password masked. */
  readonly displayUrl: string;
  private users = 0;
  private closed = false;
  private readonly duplicates = new Set<Redis>();
  private lastError: Error | undefined;

  private constructor(client: Redis, private readonly options: ResolvedConnectionOptions) {
    this.client = client;
    this.namespace = options.namespace;
    this.displayUrl = maskUrl(options.url);
  }

  /**
   * Connects to `options.url`; throws ServiceUnavailableError (password masked) if the server does
   * not answer. The caller holds the first use: services retain it, then the caller releases it.
   */
  static async open(options: ResolvedConnectionOptions): Promise<RedisConnection> {
    const client = new Redis(options.url, redisClientOptions(options));
    const connection = new RedisConnection(client, options);
    client.on('error', (error: Error) => {
      connection.lastError = error;
    });
    await connection.connect(client);
    LuaScripts.install(client);
    connection.users = 1;
    return connection;
  }

  /** Marks one more service as a user of this connection. */
  retain(): this {
    if (this.closed) throw new ClosedError(`Redis connection to ${this.displayUrl}`);
    this.users++;
    return this;
  }

  /** A service is done with the connection; the last release closes it and its duplicates. */
  async release(): Promise<void> {
    this.users--;
    if (this.users > 0 || this.closed) return;
    this.closed = true;
    for (const duplicate of this.duplicates) duplicate.disconnect();
    this.duplicates.clear();
    await this.client.quit().catch(() => this.client.disconnect());
  }

  /**
   * A new connection to the same server for blocking reads or pub/sub: never auto-pipelined, and
   * its commands wait for reconnection instead of failing. Closed by {@link closeDuplicate} or
   * with this connection.
   */
  async duplicate(role: string, overrides: RedisOptions = {}): Promise<Redis> {
    if (this.closed) throw new ClosedError(`Redis connection to ${this.displayUrl}`);
    const client = this.client.duplicate({
      lazyConnect: true,
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
      connectionName: `stem:${this.namespace}:${role}`,
      ...overrides,
    });
    client.on('error', (error: Error) => {
      this.lastError = error;
    });
    this.duplicates.add(client);
    await this.connect(client);
    LuaScripts.install(client);
    return client;
  }

  /** Disconnects a connection made by {@link duplicate}. */
  closeDuplicate(client: Redis): void {
    this.duplicates.delete(client);
    client.disconnect();
  }

  /** The last connection error ioredis reported (it reconnects by itself). */
  get error(): Error | undefined {
    return this.lastError;
  }

  private async connect(client: Redis): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.options.connectTimeoutMs}ms`)), this.options.connectTimeoutMs);
        }),
      ]);
    } catch (error) {
      const cause = this.lastError ?? error;
      client.disconnect();
      throw new ServiceUnavailableError(this.displayUrl, cause);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The ioredis options of the command connection (duplicates inherit them). ioredis reads the host,
 * port, db, ACL user and password from the URL itself, and those win over `username`/`password`
 * given here; `tls` is passed as it is.
 */
export function redisClientOptions(options: ResolvedConnectionOptions): RedisOptions {
  const clientOptions: RedisOptions = {
    lazyConnect: true,
    enableAutoPipelining: true,
    connectTimeout: options.connectTimeoutMs,
    connectionName: `stem:${options.namespace}`,
  };
  if (options.username !== undefined) clientOptions.username = options.username;
  if (options.password !== undefined) clientOptions.password = options.password;
  if (options.tls !== undefined) clientOptions.tls = options.tls;
  return clientOptions;
}

/** Runs a pipeline (or MULTI) and returns its replies; throws the first command error. */
export async function execPipeline(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const loads = LuaScripts.loadReplies(pipeline);
  const replies: unknown[] = [];
  for (let i = 0; i < results.length; i++) {
    const [error, reply] = results[i]!;
    if (error) {
      if (isNoScript(error)) LuaScripts.lost(pipeline);
      throw error;
    }
    if (loads?.has(i)) continue;
    replies.push(reply);
  }
  return replies;
}
