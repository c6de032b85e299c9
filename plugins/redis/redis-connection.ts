import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import { stateWriteKey, type StateWriteKey } from '../../sdk/contracts/index.js';
import { ClosedError, DatabaseUnavailableError, ServiceUnavailableError } from '../../sdk/errors.js';
import { hashSlot } from './hash-slot.js';
import { keyPrefix } from './key-part.js';
import { LuaScripts, isNoScript } from './lua-scripts.js';
import { maskUrl } from '../../sdk/url.js';
import type { ResolvedConnectionOptions } from './redis-options.js';
import type { RedisStateWriter } from './redis-state-writer.js';

/** How long closing a connection waits for the answer to QUIT before it drops the connection. */
const QUIT_GRACE_MS = 2_000;

/** The command client: one server (or a sentinel-watched master), or a cluster. */
export type RedisClient = Redis | Cluster;

/**
 * One ioredis connection to a Redis server (or a cluster, or a master found through sentinels), shared by the services of one
 * plugin: opened (and
 * checked) at startup, reconnected by ioredis at run time, closed when its last user releases it.
 * Blocking reads and pub/sub get their own connections through {@link RedisConnection.duplicate}.
 */
export class RedisConnection {
  /** The command connection (auto-pipelined: commands issued in the same tick share one write; per node on a cluster). */
  readonly client: RedisClient;
  /** The client when it is a Redis Cluster: multi-key work then goes one hash slot at a time. */
  readonly cluster: Cluster | undefined;
  /** The key prefix of every service on this connection: the namespace, encoded by {@link keyPrefix}. */
  readonly namespace: string;
  /** The URL with the password masked. */
  readonly displayUrl: string;
  /** The key a broker and a backend on this connection share to write states in one round trip. */
  readonly stateWrites: StateWriteKey<RedisStateWriter> = stateWriteKey('redis');
  private users = 0;
  private closed = false;
  private readonly duplicates = new Set<RedisClient>();
  private lastError: Error | undefined;

  private constructor(
    client: RedisClient,
    private readonly options: ResolvedConnectionOptions,
  ) {
    this.client = client;
    this.cluster = client instanceof Cluster ? client : undefined;
    this.namespace = keyPrefix(options.namespace);
    this.displayUrl = maskUrl(options.url);
  }

  /**
   * Connects to `options.url`; throws ServiceUnavailableError (password masked) if the server does
   * not answer. The caller holds the first use: services retain it, then the caller releases it.
   */
  static async open(options: ResolvedConnectionOptions): Promise<RedisConnection> {
    const client = createClient(options);
    const connection = new RedisConnection(client, options);
    connection.watch(client);
    await connection.connect(client);
    if (client instanceof Redis) LuaScripts.install(client);
    connection.users = 1;
    return connection;
  }

  /** Marks one more service as a user of this connection. */
  retain(): this {
    if (this.closed) throw new ClosedError(`Redis connection to ${this.displayUrl}`);
    this.users++;
    return this;
  }

  /**
   * A service is done with the connection; the last release closes it and its duplicates. The
   * command connection gets QUIT (the replies under way arrive first), and is dropped when that
   * has no answer within {@link QUIT_GRACE_MS}: a QUIT queued while ioredis reconnects waits for a
   * connection, and for ever when the server (or a proxy before it) accepts one but never answers.
   */
  async release(): Promise<void> {
    this.users--;
    if (this.users > 0 || this.closed) return;
    this.closed = true;
    for (const duplicate of this.duplicates) duplicate.disconnect();
    this.duplicates.clear();
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      this.client.quit().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), QUIT_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!answered) this.client.disconnect();
  }

  /**
   * A new connection to the same server for blocking reads or pub/sub: never auto-pipelined, and
   * its commands wait for reconnection instead of failing. Closed by {@link closeDuplicate} or
   * with this connection.
   */
  async duplicate(role: string, overrides: RedisOptions = {}): Promise<RedisClient> {
    if (this.closed) throw new ClosedError(`Redis connection to ${this.displayUrl}`);
    const own: RedisOptions = {
      lazyConnect: true,
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
      connectionName: `stem:${this.namespace}:${role}`,
      ...overrides,
    };
    let client: RedisClient;
    if (this.cluster !== undefined) {
      const { lazyConnect, enableAutoPipelining, ...redisOptions } = own;
      client = this.cluster.duplicate(undefined, {
        ...this.cluster.options,
        lazyConnect,
        enableAutoPipelining,
        redisOptions: { ...this.cluster.options.redisOptions, ...redisOptions },
      });
    } else {
      client = (this.client as Redis).duplicate(own);
    }
    this.watch(client);
    this.duplicates.add(client);
    await this.connect(client);
    if (client instanceof Redis) LuaScripts.install(client);
    return client;
  }

  /**
   * A {@link duplicate} for SUBSCRIBE, subscribed again to `channels()` after each reconnect. Off a
   * cluster that is done here rather than by ioredis' autoResubscribe, whose SUBSCRIBE has nobody
   * to hear it fail: a connection closed while it was under way (close right after a reconnect)
   * made an unhandled rejection, which ends a Node process that has no handler for those.
   */
  async subscriber(role: string, channels: () => readonly string[]): Promise<RedisClient> {
    if (this.cluster !== undefined) return this.duplicate(role);
    const client = await this.duplicate(role, { autoResubscribe: false });
    client.on('ready', () => {
      const again = channels();
      if (again.length > 0) client.subscribe(...again).catch(() => undefined);
    });
    return client;
  }

  /**
   * On a cluster, a connection of its own to the master that serves `slot` now, for a blocking
   * read there (a cluster client cannot block on one node for a command of its own), with the
   * node's address (`host:port`). It neither queues nor reconnects: when its node goes, its
   * commands fail, and the caller opens one to the slot's new master.
   */
  async slotDuplicate(slot: number, role: string): Promise<{ client: Redis; node: string }> {
    const cluster = this.cluster;
    if (cluster === undefined) throw new Error('slotDuplicate is for a cluster connection');
    if (this.closed) throw new ClosedError(`Redis connection to ${this.displayUrl}`);
    const node = this.slotOwner(slot);
    const master = node === undefined ? undefined : this.nodeClient(node);
    if (master === undefined) throw new Error(`no master is known for slot ${slot} of ${this.displayUrl} yet; try again`);
    const client = master.duplicate({
      lazyConnect: true,
      enableAutoPipelining: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectionName: `stem:${this.namespace}:${role}`,
    });
    client.on('error', () => undefined);
    this.duplicates.add(client);
    await this.connect(client);
    return { client, node: node! };
  }

  /** On a cluster, the `host:port` of the master serving `slot`, as the client last learned it. */
  slotOwner(slot: number): string | undefined {
    return this.cluster?.slots[slot]?.[0];
  }

  /** On a cluster, the client's own connection to the node `host:port` (to send CLIENT UNBLOCK there). */
  nodeClient(node: string): Redis | undefined {
    return this.cluster?.nodes('all').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === node);
  }

  /** Disconnects a connection made by {@link duplicate} or {@link slotDuplicate}. */
  closeDuplicate(client: RedisClient): void {
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
  private watch(client: RedisClient): void {
    client.on('error', (error: Error) => {
      if (isSelectRefusal(error)) {
        this.lastError = this.databaseError(client, error);
        client.disconnect(true);
        return;
      }
      this.lastError = error;
    });
  }

  private databaseError(client: RedisClient, refusal: Error): DatabaseUnavailableError {
    const db = client instanceof Redis ? (client.options.db ?? 0) : 0;
    return new DatabaseUnavailableError(
      this.displayUrl,
      `the server refused database ${db} (${refusal.message})`,
      `use a db index the server has (0 to its "databases" setting minus one, 0-15 by default) or raise "databases" in its redis.conf`,
      refusal,
    );
  }

  private async connect(client: RedisClient): Promise<void> {
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

/**
 * The command client for `options.topology`: a Cluster, a Redis that asks sentinels for its
 * master, or a Redis on the URL.
 */
function createClient(options: ResolvedConnectionOptions): RedisClient {
  const topology = options.topology;
  const own = redisClientOptions(options);
  if (topology.kind === 'cluster') {
    const { lazyConnect, enableAutoPipelining, ...redisOptions } = own;
    const clusterOptions: ClusterOptions = {
      ...topology.options,
      lazyConnect,
      enableAutoPipelining,
      redisOptions: { ...topology.options.redisOptions, ...redisOptions },
    };
    return new Cluster(topology.nodes, clusterOptions);
  }
  if (topology.kind === 'sentinel') {
    return new Redis({
      // a demoted master answers writes with READONLY until it drops us: reconnect (to the new master) and resend
      reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
      ...topology.options,
      ...own,
      sentinels: topology.sentinels,
      name: topology.name,
      db: topology.db,
    });
  }
  return new Redis(options.url, own);
}

/** Runs a pipeline (or MULTI) and returns its replies; throws the first command error. */
export async function execPipeline(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = await execPipelineSettled(pipeline);
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

/** True for a pipeline or MULTI (queue on it), false for a client (send now). */
export function isPipeline(target: RedisClient | ChainableCommander): target is ChainableCommander {
  return (target as { isPipeline?: boolean }).isPipeline === true;
}

/** What pipeline.exec() answers: per command, its error or its reply. */
export type PipelineResults = Array<[error: Error | null, reply: unknown]>;

/**
 * `pipeline.exec()`, which on a cluster may hold commands of many hash slots: there they are sent
 * as one pipeline per master (commands of a master keep their order; masters run side by side), and
 * a script a node does not know (a promoted replica, a restart) is sent again with EVAL.
 */
export async function execPipelineSettled(pipeline: ChainableCommander): Promise<PipelineResults> {
  const cluster = (pipeline as unknown as { isCluster?: boolean; redis?: Cluster }).isCluster
    ? (pipeline as unknown as { redis: Cluster }).redis
    : undefined;
  if (cluster === undefined) return ((await pipeline.exec()) ?? []) as PipelineResults;
  const queue = (pipeline as unknown as { _queue: QueuedCommand[] })._queue;
  // a MULTI is one slot's (the server refuses more), and answers for its inner commands only
  if (queue[0]?.name === 'multi') return ((await pipeline.exec()) ?? []) as PipelineResults;
  // each command names keys of one slot (ioredis checks); a pipeline may hold several slots of one master
  const byNode = new Map<string, number[]>();
  const keyless: number[] = [];
  for (let i = 0; i < queue.length; i++) {
    const keys = queue[i]!.getKeys();
    if (keys.length === 0) {
      keyless.push(i);
      continue;
    }
    const slot = hashSlot(String(keys[0]));
    const node = cluster.slots[slot]?.[0] ?? `slot ${slot}`;
    let positions = byNode.get(node);
    if (positions === undefined) byNode.set(node, (positions = []));
    positions.push(i);
  }
  if (byNode.size <= 1) return retryLostScripts(cluster, queue, [...queue.keys()], ((await pipeline.exec()) ?? []) as PipelineResults);
  // a command without keys may go to any node: with the first group
  if (keyless.length > 0) {
    const first = byNode.values().next().value!;
    first.push(...keyless);
    first.sort((a, b) => a - b);
  }
  const results: PipelineResults = new Array(queue.length);
  await Promise.all(
    [...byNode.values()].map(async (positions) => {
      const part = cluster.pipeline(positions.map((i) => [queue[i]!.name, ...queue[i]!.args]));
      const replies = await retryLostScripts(cluster, queue, positions, ((await part.exec()) ?? []) as PipelineResults);
      positions.forEach((position, j) => {
        results[position] = replies[j] ?? [new Error('no reply'), null];
      });
    }),
  );
  return results;
}

/** A command queued on an ioredis pipeline, as it keeps it. */
interface QueuedCommand {
  name: string;
  args: unknown[];
  getKeys(): Array<string | Buffer>;
}

/** Replaces the NOSCRIPT replies among `results` (of `queue` at `positions`) by an EVAL of the script on the cluster. */
async function retryLostScripts(
  cluster: Cluster,
  queue: QueuedCommand[],
  positions: number[],
  results: PipelineResults,
): Promise<PipelineResults> {
  for (let j = 0; j < results.length; j++) {
    const [error] = results[j] ?? [null];
    const command = queue[positions[j]!]!;
    if (error === null || !isNoScript(error) || command.name !== 'evalsha') continue;
    const lua = LuaScripts.sourceOf(String(command.args[0]));
    if (lua === undefined) continue;
    try {
      const [numberOfKeys, ...rest] = command.args.slice(1) as Array<string | number>;
      results[j] = [null, await cluster.eval(lua, numberOfKeys!, ...rest)];
    } catch (retryError) {
      results[j] = [retryError as Error, null];
    }
  }
  return results;
}
