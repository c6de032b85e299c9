import type { ChainableCommander } from 'ioredis';
import type {
  ChordClaim,
  ChordClaimOptions,
  GroupStatus,
  ResultBackend,
  SetOptions,
  StateWriteKey,
  TaskPage,
  TaskQuery,
  TaskStatus,
  Unsubscribe,
  WorkerHeartbeat,
} from '../../sdk/contracts/index.js';
import { ListingNotSupportedError, StemError } from '../../sdk/errors.js';
import { statePosition } from '../../sdk/state-order.js';
import { hashSlot } from './hash-slot.js';
import { tagPart } from './key-part.js';
import { LuaScripts } from './lua-scripts.js';
import { execPipeline, isPipeline, type RedisClient, type RedisConnection } from './redis-connection.js';
import { resolveResultTtl, type RedisResultBackendOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';
import type { RedisStateWriter } from './redis-state-writer.js';
import { indexTime, RedisTaskIndex } from './task-index.js';
import { TaskWatchHub } from './task-watch-hub.js';

/** States per set-states call: Redis runs a script without interleaving, so a batch is cut into slices. */
const SET_STATES_CHUNK = 500;
/** From this many states on, one script call for all is cheaper than a call per state. */
const SET_STATES_SCRIPT_FROM = 4;

/** A task's first state: nothing stored for it can be older. */
function isFirstState(status: TaskStatus): boolean {
  return status.state === 'queued' && status.attempt === 0 && (status.generation ?? 0) === 0;
}

/** The number of each state's set in the listing index, as set-states.lua numbers them. */
const SET_OF_STATE: Readonly<Record<string, string>> = {
  queued: '1',
  running: '2',
  retried: '3',
  succeeded: '4',
  failed: '5',
  cancelled: '6',
};

/**
 * Appends a state's set-states arguments: id, generation, attempt, its place (its set's number,
 * then its index time unless the index skips it), JSON. Five per state, as before the index.
 */
function pushScriptArgs(args: Array<string | number>, status: TaskStatus, listed: boolean): void {
  const [generation, attempt] = statePosition(status);
  const set = SET_OF_STATE[status.state] ?? '0';
  args.push(status.id, generation, attempt, listed ? set + indexTime(status.updatedAt) : set, JSON.stringify(status));
}

/**
 * The ResultBackend contract on Redis: each task state a JSON string with a TTL, published on a
 * per-task channel for watchers; groups as a member list and a results hash (Lua for the count);
 * the chord claim as a hash with a lease (Lua); heartbeats as keys with a TTL indexed by a zset;
 * the listing index as a sorted set per state (see RedisTaskIndex), kept by the same writes, except
 * on a cluster, where a task's key and the index cannot share a script (no listing there).
 */
export class RedisResultBackend extends RedisService implements ResultBackend, RedisStateWriter {
  /** How long records are kept when a write names no TTL (ms). */
  readonly resultTtlMs: number;
  private readonly prefix: string;
  private readonly hub: TaskWatchHub;
  /** The listing index; undefined on a cluster. */
  private readonly index: RedisTaskIndex | undefined;
  /** The index's keys as set-states takes them after the task keys (empty on a cluster). */
  private readonly indexKeys: readonly string[];
  /** See RedisResultBackendOptions.listQueued. */
  private readonly listQueued: boolean;

  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection, options: RedisResultBackendOptions = {}) {
    super(connection, 'RedisResultBackend');
    this.prefix = connection.namespace;
    this.resultTtlMs = resolveResultTtl(options);
    this.hub = new TaskWatchHub(connection);
    this.index = connection.cluster === undefined ? new RedisTaskIndex(this.client, this.prefix, (id) => this.taskKey(id)) : undefined;
    this.indexKeys = this.index?.scriptKeys() ?? [];
    this.listQueued = options.listQueued === true;
  }

  /** Connects to `url` and returns a backend that owns its connection. */
  static async connect(url: string, options: RedisResultBackendOptions = {}): Promise<RedisResultBackend> {
    resolveResultTtl(options, 'RedisResultBackend');
    return RedisService.openWith(url, options, 'RedisResultBackend', (connection) => new RedisResultBackend(connection, options));
  }

  /** The key of a task's state. */
  taskKey(id: string): string {
    return `${this.prefix}:task:${id}`;
  }

  /** The channel a task's state changes are published on. */
  taskChannel(id: string): string {
    return `${this.prefix}:task-events:${id}`;
  }

  async set(statuses: readonly TaskStatus[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    if (statuses.length === 0) return;
    if (statuses.length < SET_STATES_SCRIPT_FROM) {
      // Straight on the client: auto-pipelining sends them with the rest of this tick (an enqueue's XADD).
      await Promise.all(this.singleWrites(this.client, statuses, options));
      return;
    }
    const pipeline = this.client.pipeline();
    this.queueSet(pipeline, statuses, options);
    await execPipeline(pipeline);
  }

  /** This backend as the Redis broker's state writer, when `key` is its connection's. */
  stateWriter<Writer>(key: StateWriteKey<Writer>): Writer | undefined {
    const own: StateWriteKey<RedisStateWriter> = this.connection.stateWrites;
    return (key as object) === own ? (this as RedisStateWriter as unknown as Writer) : undefined;
  }

  /**
   * Adds `set`'s commands to `pipeline` (the broker settles states and acks in one round trip).
   * Every write goes through the set-states script, which applies it only when it is not older
   * than the stored state; a few states are a call each, more one call per chunk, since a
   * command per state bounded a busy worker's throughput.
   */
  queueSet(pipeline: ChainableCommander, statuses: readonly TaskStatus[], options: SetOptions = {}): void {
    if (statuses.length < SET_STATES_SCRIPT_FROM) {
      this.singleWrites(pipeline, statuses, options);
      return;
    }
    const head = this.scriptHead(options);
    for (const slice of this.bySlot(statuses)) {
      // on a cluster most slices hold one state: a plain SET NX for a first state, one script call otherwise
      if (slice.length < SET_STATES_SCRIPT_FROM) this.singleWrites(pipeline, slice, options);
      else this.queueScripts(pipeline, slice, head, options.quiet === true);
    }
  }

  /** On a cluster, the states by the hash slot of their keys (a script may only touch one slot); else all of them. */
  private bySlot(statuses: readonly TaskStatus[]): Array<readonly TaskStatus[]> {
    if (this.connection.cluster === undefined) return [statuses];
    const slices = new Map<number, TaskStatus[]>();
    for (const status of statuses) {
      const slot = hashSlot(this.taskKey(status.id));
      let slice = slices.get(slot);
      if (slice === undefined) slices.set(slot, (slice = []));
      slice.push(status);
    }
    return [...slices.values()];
  }

  /** Queues set-states calls for `statuses`, whose keys may share one script call. */
  private queueScripts(
    pipeline: ChainableCommander,
    statuses: readonly TaskStatus[],
    head: ReadonlyArray<string | number>,
    quiet: boolean,
  ): void {
    // The producer's first states (quiet) join the index only with listQueued: see the option.
    const listFirst = this.listQueued || !quiet;
    for (let first = 0; first < statuses.length; first += SET_STATES_CHUNK) {
      const chunk = statuses.slice(first, first + SET_STATES_CHUNK);
      const keys: string[] = new Array(chunk.length);
      const args: Array<string | number> = head.slice();
      args.push(chunk.length);
      for (let i = 0; i < chunk.length; i++) {
        const status = chunk[i]!;
        keys[i] = this.taskKey(status.id);
        pushScriptArgs(args, status, listFirst || !isFirstState(status));
      }
      LuaScripts.queue(this.client, pipeline, 'set-states', keys.concat(this.indexKeys), args);
    }
  }

  /**
   * One command per state on a client (their promises) or a pipeline. A task's first state (the
   * producer's quiet `queued` of attempt 0) is a SET NX (anything already stored is newer), in
   * first-state.lua with its index member under listQueued: one command either way.
   */
  private singleWrites(target: RedisClient | ChainableCommander, statuses: readonly TaskStatus[], options: SetOptions): unknown[] {
    const ttl = this.ttl(options);
    const writes: unknown[] = [];
    for (const status of statuses) {
      const key = this.taskKey(status.id);
      if (options.quiet === true && isFirstState(status)) {
        if (this.index === undefined || !this.listQueued) writes.push(target.set(key, JSON.stringify(status), 'PX', ttl, 'NX'));
        else {
          const keys = [key, this.index.stateKey('queued')];
          const args = [JSON.stringify(status), ttl, this.index.member(status)];
          writes.push(
            !isPipeline(target)
              ? LuaScripts.call(target, 'first-state', keys, args)
              : LuaScripts.queue(this.client, target, 'first-state', keys, args),
          );
        }
        continue;
      }
      const args = this.scriptHead(options);
      args.push(1);
      pushScriptArgs(args, status, true);
      const keys = this.indexKeys.length === 0 ? [key] : [key, ...this.indexKeys];
      writes.push(
        !isPipeline(target)
          ? LuaScripts.call(target, 'set-states', keys, args)
          : LuaScripts.queue(this.client, target, 'set-states', keys, args),
      );
    }
    return writes;
  }

  /** The set-states arguments before the count and the per-state ones. */
  private scriptHead(options: SetOptions): Array<string | number> {
    return [this.ttl(options), options.quiet === true ? '1' : '0', this.taskChannel(''), this.index === undefined ? '0' : '1', Date.now()];
  }

  /**
   * Stored tasks by state, name and queue, newest first (see RedisTaskIndex). Throws
   * ListingNotSupportedError on a cluster, which keeps no index.
   */
  async listTasks(query: TaskQuery): Promise<TaskPage> {
    this.assertOpen();
    if (this.index === undefined) throw new ListingNotSupportedError('Redis Cluster');
    return this.index.list(query);
  }

  async get(id: string): Promise<TaskStatus | null> {
    this.assertOpen();
    const raw = await this.client.get(this.taskKey(id));
    return raw === null ? null : (JSON.parse(raw) as TaskStatus);
  }

  async watch(id: string, listener: (status: TaskStatus) => void): Promise<Unsubscribe> {
    this.assertOpen();
    return this.hub.watch(this.taskChannel(id), listener);
  }

  async watchCurrent(
    id: string,
    listener: (status: TaskStatus) => void,
  ): Promise<{ unsubscribe: Unsubscribe; current: TaskStatus | null }> {
    this.assertOpen();
    const { unsubscribe, raw } = await this.hub.watchAndRead(this.taskChannel(id), listener, this.taskKey(id), this.client);
    return { unsubscribe, current: raw === null ? null : (JSON.parse(raw) as TaskStatus) };
  }

  async initGroup(groupId: string, memberIds: readonly string[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const [members, results] = this.groupKeys(groupId);
    await execPipeline(this.client.multi().del(results).set(members, JSON.stringify(memberIds), 'PX', this.ttl(options)));
  }

  async recordGroupResult(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number }> {
    this.assertOpen();
    const [members, results] = this.groupKeys(groupId);
    const [completed, expected] = (await LuaScripts.call(
      this.client,
      'group-record',
      [members, results],
      [status.id, JSON.stringify(status)],
    )) as [number, number];
    if (completed === -1)
      throw new StemError('unknown-group', `group ${groupId} is unknown (never initialised, or expired); call initGroup first`);
    if (completed === -2) throw new StemError('not-a-group-member', `task ${status.id} is not a member of group ${groupId}`);
    return { completed, expected };
  }

  async getGroup(groupId: string): Promise<GroupStatus | null> {
    this.assertOpen();
    const [membersKey, resultsKey] = this.groupKeys(groupId);
    const [rawMembers, rawResults] = (await execPipeline(this.client.multi().get(membersKey).hgetall(resultsKey))) as [
      string | null,
      Record<string, string>,
    ];
    if (rawMembers === null) return null;
    const memberIds = JSON.parse(rawMembers) as string[];
    const results = memberIds.map((id) => (rawResults[id] === undefined ? null : (JSON.parse(rawResults[id]) as TaskStatus)));
    return { id: groupId, memberIds, expected: memberIds.length, completed: results.filter((r) => r !== null).length, results };
  }

  async claimChord(chordId: string, options: ChordClaimOptions = {}): Promise<ChordClaim> {
    this.assertOpen();
    const leaseMs = options.leaseMs === undefined ? 0 : Math.max(1, Math.ceil(options.leaseMs));
    const reply = (await LuaScripts.call(
      this.client,
      'chord-claim',
      [this.chordKey(chordId)],
      [options.claimer ?? '', leaseMs, this.ttl(options)],
    )) as [1, string | null] | [0, 0 | 1, string, number];
    if (reply[0] === 1) return reply[1] === null ? { won: true } : { won: true, takenOverFrom: reply[1] };
    const [, fired, claimer, leaseEndsAt] = reply;
    const lost: ChordClaim = { won: false, fired: fired === 1, claimer };
    if (leaseEndsAt >= 0) lost.leaseEndsAt = leaseEndsAt;
    return lost;
  }

  async chordFired(chordId: string, options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const key = this.chordKey(chordId);
    await execPipeline(this.client.multi().hset(key, 'fired', '1').pexpire(key, this.ttl(options)));
  }

  async heartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void> {
    this.assertOpen();
    await execPipeline(
      this.client
        .pipeline()
        .set(`${this.prefix}:worker:${beat.workerId}`, JSON.stringify(beat), 'PX', Math.max(1, Math.ceil(ttlMs)))
        .zadd(`${this.prefix}:workers`, Date.now() + ttlMs, beat.workerId),
    );
  }

  async listWorkers(): Promise<WorkerHeartbeat[]> {
    this.assertOpen();
    const index = `${this.prefix}:workers`;
    const [, ids] = (await execPipeline(this.client.pipeline().zremrangebyscore(index, '-inf', Date.now()).zrange(index, 0, '-1'))) as [
      number,
      string[],
    ];
    if (ids.length === 0) return [];
    const keys = ids.map((id) => `${this.prefix}:worker:${id}`);
    // MGET may not span slots on a cluster; there each GET goes to its node (auto-pipelined)
    const raws =
      this.connection.cluster === undefined ? await this.client.mget(...keys) : await Promise.all(keys.map((key) => this.client.get(key)));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as WorkerHeartbeat);
  }

  protected override async closeResources(): Promise<void> {
    this.hub.close();
  }

  private chordKey(chordId: string): string {
    return `${this.prefix}:chord:${chordId}`;
  }

  private groupKeys(groupId: string): [string, string] {
    // The id is escaped inside the hash tag, so a `}` in it cannot split a group's keys over two slots.
    const tag = `${this.prefix}:{group:${tagPart(groupId)}}`;
    return [`${tag}:members`, `${tag}:results`];
  }

  private ttl(options: SetOptions): number {
    return Math.max(1, Math.ceil(options.ttlMs ?? this.resultTtlMs));
  }
}
