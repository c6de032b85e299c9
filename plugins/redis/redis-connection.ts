import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { stateWriteKey, type StateWriteKey } from '../../sdk/contracts/index.js';
import { ClosedError, DatabaseUnavailableError, ServiceUnavailableError } from '../../sdk/errors.js';
import { keyPrefix } from './key-part.js';
import { LuaScripts, isNoScript } from './lua-scripts.js';
import { maskUrl } from '../../sdk/url.js';
import type { ResolvedConnectionOptions } from './redis-options.js';
import type { RedisStateWriter } from './redis-state-writer.js';

/**
 * One ioredis connection to a Redis server, shared by the services of one plugin: opened (and
 * checked) at startup, reconnected by ioredis at run time, closed when its last user releases it.
 * Blocking reads and pub/sub get their own connections through {@link RedisConnection.duplicate}.
 */
export class RedisConnection {
  /** The command connection (auto-pipelined: commands issued in the same tick share one write). */
  readonly client: Redis;
  /** The key prefix of every service on this connection: the namespace, encoded by {@link keyPrefix}. */
  readonly namespace: string;
  /** The URL with the password masked. */
  readonly displayUrl: string;
  /** The key a broker and a backend on this connection share to write states in one round trip. */
  readonly stateWrites: StateWriteKey<RedisStateWriter> = stateWriteKey('redis');
  private users = 0;
  private closed = false;
  private readonly duplicates = new Set<Redis>();
  private lastError: Error | undefined;

  private constructor(
    client: Redis,
    private readonly options: ResolvedConnectionOptions,
  ) {
    this.client = client;
    this.namespace = keyPrefix(options.namespace);
    this.displayUrl = maskUrl(options.url);
  }

  /**
   * Connects to `options.url`; throws ServiceUnavailableError (password masked) if the server does
   * not answer. The caller holds the first use: services retain it, then the caller releases it.
   */
  static async open(options: ResolvedConnectionOptions): Promise<RedisConnection> {
    const client = new Redis(options.url, redisClientOptions(options));
    const connection = new RedisConnection(client, options);
    connection.watch(client);
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
    this.watch(client);
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

  /**
   * Records the client's errors, and never lets it run on a database it was not told to use.
   * ioredis sends `SELECT <db>` on every (re)connect but only reports a refusal as an 'error'
   * event and goes on to 'ready' on db 0. It reports it before 'ready' (its handshake finishes
   * before the queued commands are let through), so dropping the connection here, with a
   * reconnect, keeps every command queued: they wait, or fail after `maxRetriesPerRequest`, and
   * none lands on db 0.
   */
  private watch(client: Redis): void {
    client.on('error', (error: Error) => {
      if (isSelectRefusal(error)) {
        this.lastError = this.databaseError(client, error);
        client.disconnect(true);
        return;
      }
      this.lastError = error;
    });
  }

  private databaseError(client: Redis, refusal: Error): DatabaseUnavailableError {
    const db = client.options.db ?? 0;
    return new DatabaseUnavailableError(
      this.displayUrl,
      `the server refused database ${db} (${refusal.message})`,
      `use a db index the server has (0 to its "databases" setting minus one, 0-15 by default) or raise "databases" in its redis.conf`,
      refusal,
    );
  }

  private async connect(client: Redis): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let onError: ((error: Error) => void) | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.options.connectTimeoutMs}ms`)), this.options.connectTimeoutMs);
          // A refused SELECT at startup is a wrong URL, not an outage: fail now, without retrying.
          onError = (error) => {
            if (isSelectRefusal(error)) reject(this.databaseError(client, error));
          };
          client.on('error', onError);
        }),
      ]);
    } catch (error) {
      client.disconnect();
      if (error instanceof DatabaseUnavailableError) throw error;
      throw new ServiceUnavailableError(this.displayUrl, this.lastError ?? error);
    } finally {
      clearTimeout(timer);
      if (onError !== undefined) client.off('error', onError);
    }
  }
}

/**
 * True for the server's refusal of the `SELECT` ioredis sends on connect (db index out of range,
 * SELECT not allowed); a NOAUTH there is the failed login's echo, reported as that.
 */
function isSelectRefusal(error: Error): boolean {
  return (error as Error & { command?: { name?: string } }).command?.name === 'select' && !error.message.startsWith('NOAUTH');
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
    connectionName: `stem:${keyPrefix(options.namespace)}`,
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
