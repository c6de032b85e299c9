import type { ChainableCommander } from 'ioredis';
import type {
  Broker,
  BrokerConsumer,
  ConsumerOptions,
  DeadLetter,
  DeadLetterPage,
  Delivery,
  NackOptions,
  PublishReport,
  ReplayOptions,
  ResultBackend,
  SetOptions,
  TaskStatus,
} from '../../sdk/contracts/index.js';
import { concurrencyKeyOf } from '../../sdk/concurrency-key.js';
import type { ConcurrencyControl, ConcurrencyKeyStats } from '../../sdk/contracts/concurrency-control.js';
import { encodeEnvelope, type Envelope } from '../../sdk/envelope.js';
import { QueueFullError } from '../../sdk/errors.js';
import { hasBoundedEnvelope, type QueueBound, queueBoundOf } from '../../sdk/queue-bound.js';
import { DueSignal, wakeChannel } from './due-signal.js';
import { LeaseReceipt } from './lease-receipt.js';
import { LuaScripts } from './lua-scripts.js';
import { QueueKeys } from './queue-keys.js';
import { execPipeline, isPipeline, type RedisClient, type RedisConnection } from './redis-connection.js';
import { RedisConsumer } from './redis-consumer.js';
import { resolveBrokerOptions, type RedisBrokerOptions, type ResolvedBrokerOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';
import type { RedisStateWriter } from './redis-state-writer.js';
import { startedOver } from '../../sdk/state-order.js';

const PURGE_BATCH = 10_000;

/** The deliveries of one queue and consumer to acknowledge: unkeyed lease members, keyed (band, entry id, key). */
interface AckSource {
  keys: QueueKeys;
  consumerId: string;
  members: string[];
  keyed: Array<[band: string, entryId: string, key: string]>;
}

/**
 * The Broker contract on Redis Streams: one stream per queue and priority band read through one
 * consumer group per queue, delayed tasks in a zset, leases in a zset (see docs/redis.md), dead
 * letters in a hash, broadcast channels as streams with one group per subscriber.
 */
export class RedisBroker extends RedisService implements Broker {
  /** The validated broker options. */
  readonly options: ResolvedBrokerOptions;
  private readonly keyCache = new Map<string, QueueKeys>();
  private readonly registered = new Set<string>();
  private readonly consumers = new Set<RedisConsumer>();
  /** Tells idle consumers of this process when delayed work falls due earlier than they planned. */
  readonly dueSignal: DueSignal;

  /**
   * Per-key concurrency (docs/flow-control.md): a keyed task enters its queue's streams only while
   * its key holds fewer slots than its limit (gate-publish.lua); the others wait in a list per key,
   * and the ack, drop or dead letter that frees a slot lets the next one in (gate-release.lua).
   */
  readonly concurrency: ConcurrencyControl = {
    setLimit: async (queue, key, limit) => {
      this.assertOpen();
      const keys = this.keys(queue);
      await LuaScripts.call(
        this.client,
        'gate-release',
        [...this.gateKeys(keys, ''), keys.concurrencyWaiting(key)],
        ['', Date.now(), wakeChannel(keys), 'limit', key, limit === null ? '' : limit, ''],
      );
    },
    stats: (queue) => this.concurrencyStats(queue),
  };

  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection, options: RedisBrokerOptions = {}) {
    super(connection, 'RedisBroker');
    this.options = resolveBrokerOptions(options);
    this.dueSignal = new DueSignal(connection);
  }

  /** Connects to `url` and returns a broker that owns its connection. */
  static async connect(url: string, options: RedisBrokerOptions = {}): Promise<RedisBroker> {
    resolveBrokerOptions(options, 'RedisBroker');
    return RedisService.openWith(url, options, 'RedisBroker', (connection) => new RedisBroker(connection, options));
  }

  /** The keys of a queue or broadcast address. */
  keys(address: string): QueueKeys {
    let keys = this.keyCache.get(address);
    if (keys === undefined) {
      keys = new QueueKeys(this.connection.namespace, address);
      this.keyCache.set(address, keys);
    }
    return keys;
  }

  /** Bounded queues (`max_length`): checked in the publish script (bounded-publish.lua). */
  readonly boundedQueues = true;

  async publish(envelopes: readonly Envelope[]): Promise<void | PublishReport> {
    this.assertOpen();
    if (hasBoundedEnvelope(envelopes)) return this.publishBounded(envelopes);
    await this.publishAlong(envelopes, undefined);
  }

  /**
   * One pipeline: the unbounded envelopes as usual, then one bounded-publish call per bounded
   * queue with all of its envelopes, so that each queue takes a publish whole or refuses it whole
   * (overflow reject). Throws QueueFullError naming the refused tasks once the rest is written.
   */
  private async publishBounded(envelopes: readonly Envelope[]): Promise<PublishReport> {
    const now = Date.now();
    const pipeline = this.client.pipeline();
    const fresh = new Set<string>();
    const bounded = new Map<string, { bound: QueueBound; envelopes: Envelope[] }>();
    for (const envelope of envelopes) {
      const keys = this.keys(envelope.queue);
      if (!this.registered.has(envelope.queue) && !fresh.has(envelope.queue)) {
        fresh.add(envelope.queue);
        pipeline.sadd(this.registryKey(keys), envelope.queue);
      }
      const bound = keys.broadcast ? undefined : queueBoundOf(envelope);
      if (bound === undefined) {
        this.enqueueWrite(pipeline, keys, envelope, encodeEnvelope(envelope), now);
        continue;
      }
      const group = bounded.get(envelope.queue);
      if (group === undefined) bounded.set(envelope.queue, { bound, envelopes: [envelope] });
      else {
        group.bound = bound;
        group.envelopes.push(envelope);
      }
    }
    for (const [queue, group] of bounded) {
      const keys = this.keys(queue);
      const scriptKeys = [
        keys.leases(''),
        keys.delayed,
        ...keys.streams,
        keys.deadLetters,
        keys.deadLetterIndex,
        keys.concurrencyHeld,
        keys.concurrencyLimits,
        keys.concurrencyOverrides,
      ];
      const args: Array<string | number> = [
        keys.group(''),
        now,
        wakeChannel(keys),
        group.bound.maxLength,
        group.bound.overflow,
        keys.concurrencyWaiting(''),
        queue,
      ];
      for (const envelope of group.envelopes) {
        const keyed = concurrencyKeyOf(envelope);
        const notBefore = envelope.notBefore !== undefined && envelope.notBefore > now ? envelope.notBefore : 0;
        args.push(
          keys.bandOf(envelope.priority),
          this.visibility(envelope),
          notBefore,
          keyed?.key ?? '',
          keyed?.limit ?? 1,
          envelope.id,
          encodeEnvelope(envelope),
        );
      }
      LuaScripts.queue(this.client, pipeline, 'bounded-publish', scriptKeys, args);
    }
    const replies = await execPipeline(pipeline);
    for (const queue of fresh) this.registered.add(queue);
    const verdicts = replies.slice(replies.length - bounded.size) as Array<[number, ...string[]]>;
    const dropped: DeadLetter[] = [];
    const refused: string[] = [];
    let full: { queue: string; bound: QueueBound } | undefined;
    let i = 0;
    for (const [queue, group] of bounded) {
      const [refusedFrom, ...letters] = verdicts[i++]!;
      for (const letter of letters) dropped.push(JSON.parse(letter) as DeadLetter);
      if (refusedFrom > 0) {
        full ??= { queue, bound: group.bound };
        for (const envelope of group.envelopes.slice(refusedFrom - 1)) refused.push(envelope.id);
      }
    }
    if (full !== undefined) throw new QueueFullError(full.queue, full.bound.maxLength, refused, dropped);
    return { dropped };
  }

  /**
   * Publishes and writes the `queued` states in one round trip when the backend writes through this
   * broker's connection (it answers `stateWriter` for its key): the messages' commands go first, then the states,
   * in one write, so a publish Redis refuses (out of memory, a lost connection) takes its states
   * with it. False for any other backend.
   */
  async publishWithStates(
    backend: ResultBackend,
    statuses: readonly TaskStatus[],
    options: SetOptions,
    envelopes: readonly Envelope[],
  ): Promise<boolean> {
    const writer = backend.stateWriter?.(this.connection.stateWrites);
    // A bounded publish may be refused or drop tasks: its states follow its verdict (the producer writes them).
    if (writer === undefined || hasBoundedEnvelope(envelopes)) return false;
    this.assertOpen();
    await this.publishAlong(envelopes, statuses.length === 0 ? undefined : { writer, statuses, options });
    return true;
  }

  /** The commands of `publish`, followed by a backend's state writes when given. */
  private async publishAlong(
    envelopes: readonly Envelope[],
    states: { writer: RedisStateWriter; statuses: readonly TaskStatus[]; options: SetOptions } | undefined,
  ): Promise<void> {
    if (envelopes.length === 0) return;
    if (states !== undefined && this.connection.cluster !== undefined) {
      // On a cluster the messages and their states live on different masters: publish, then write
      // the states, so that no state is written for a publish the cluster refused.
      await this.publishAlong(envelopes, undefined);
      await states.writer.set(states.statuses, states.options);
      return;
    }
    const only = envelopes.length === 1 ? envelopes[0]! : undefined;
    if (only !== undefined && this.registered.has(only.queue)) {
      // Straight on the client: auto-pipelining sends the publish and the state write of this tick
      // in one write, in that order, and no pipeline object is built for them.
      const published = this.enqueueWrite(this.client, this.keys(only.queue), only, encodeEnvelope(only), Date.now());
      if (states === undefined) {
        await published;
        return;
      }
      await Promise.all([published, states.writer.set(states.statuses, states.options)]);
      return;
    }
    const pipeline = this.client.pipeline();
    const now = Date.now();
    const fresh: string[] = [];
    for (const envelope of envelopes) {
      const keys = this.keys(envelope.queue);
      if (!this.registered.has(envelope.queue)) {
        fresh.push(envelope.queue);
        pipeline.sadd(this.registryKey(keys), envelope.queue);
      }
      this.enqueueWrite(pipeline, keys, envelope, encodeEnvelope(envelope), now);
    }
    if (states !== undefined) states.writer.queueSet(pipeline, states.statuses, states.options);
    await execPipeline(pipeline);
    for (const queue of fresh) this.registered.add(queue);
  }

  async consumer(options: ConsumerOptions): Promise<BrokerConsumer> {
    this.assertOpen();
    const addresses = [...(options.broadcasts ?? []).map((channel) => `broadcast://${channel}`), ...options.queues];
    const consumer = new RedisConsumer(
      this,
      addresses.map((address) => this.keys(address)),
      options.consumerId,
      () => this.consumers.delete(consumer),
    );
    this.consumers.add(consumer);
    const pipeline = this.client.pipeline();
    for (const queue of options.queues) pipeline.sadd(this.registryKey(this.keys(queue)), queue);
    for (const channel of options.broadcasts ?? [])
      pipeline.sadd(this.registryKey(this.keys(`broadcast://${channel}`)), `broadcast://${channel}`);
    await execPipeline(pipeline);
    for (const queue of options.queues) this.registered.add(queue);
    await consumer.open();
    return consumer;
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    this.assertOpen();
    if (deliveries.length === 0) return;
    const sources = this.sourcesOf(deliveries);
    if (sources.length === 1 && sources[0]!.keyed.length === 0) {
      const [source] = sources;
      await this.settle(this.client, source!.keys, source!.consumerId, source!.members);
      return;
    }
    const pipeline = this.client.pipeline();
    for (const source of sources) this.settleSource(pipeline, source);
    await execPipeline(pipeline);
  }

  /**
   * Writes the states (SET and PUBLISH) and acknowledges the deliveries in one pipeline, states
   * first, when the backend offers a state writer for this broker's connection; false otherwise.
   */
  async ackWithStates(
    backend: ResultBackend,
    statuses: readonly TaskStatus[],
    ttlMs: number,
    deliveries: readonly Delivery[],
  ): Promise<boolean> {
    const writer = backend.stateWriter?.(this.connection.stateWrites);
    if (writer === undefined) return false;
    this.assertOpen();
    if (this.connection.cluster !== undefined) {
      // states and acks are on different masters: the states first, so that no task is acked without its state
      await writer.set(statuses, { ttlMs });
      await this.ack(deliveries);
      return true;
    }
    const pipeline = this.client.pipeline();
    writer.queueSet(pipeline, statuses, { ttlMs });
    for (const source of this.sourcesOf(deliveries)) this.settleSource(pipeline, source);
    await execPipeline(pipeline);
    return true;
  }

  /** Deliveries grouped by queue and consumer: one settle script call each, and one gate-release call for the keyed ones. */
  private sourcesOf(deliveries: readonly Delivery[]): AckSource[] {
    const bySource = new Map<string, AckSource>();
    for (const delivery of deliveries) {
      const receipt = LeaseReceipt.parse(delivery.receipt);
      const sourceId = `${delivery.queue}\n${receipt.consumerId}`;
      let source = bySource.get(sourceId);
      if (source === undefined) {
        source = { keys: this.keys(delivery.queue), consumerId: receipt.consumerId, members: [], keyed: [] };
        bySource.set(sourceId, source);
      }
      const keyed = source.keys.broadcast ? undefined : concurrencyKeyOf(delivery.envelope);
      if (keyed === undefined) source.members.push(receipt.member);
      else source.keyed.push([receipt.band, receipt.entryId, keyed.key]);
    }
    return [...bySource.values()];
  }

  /** Queues the acks of one source: settle for its unkeyed members, gate-release for its keyed ones. */
  private settleSource(pipeline: ChainableCommander, source: AckSource): void {
    if (source.members.length > 0) this.settle(pipeline, source.keys, source.consumerId, source.members);
    if (source.keyed.length > 0) this.releaseKeyed(pipeline, source.keys, source.consumerId, 'ack', source.keyed, []);
  }

  /** The fixed keys of gate-release.lua for a queue. */
  private gateKeys(keys: QueueKeys, consumerId: string): string[] {
    return [
      keys.leases(consumerId),
      keys.concurrencyHeld,
      keys.concurrencyLimits,
      keys.concurrencyOverrides,
      keys.delayed,
      ...keys.streams,
      keys.deadLetters,
      keys.deadLetterIndex,
    ];
  }

  /** Acks (or dead-letters) keyed entries and gives their slots back, in one gate-release call. */
  private releaseKeyed(
    target: RedisClient | ChainableCommander,
    keys: QueueKeys,
    consumerId: string,
    mode: 'ack' | 'dead',
    items: ReadonlyArray<readonly [band: string, entryId: string, key: string]>,
    deadLetter: ReadonlyArray<string | number>,
  ): Promise<unknown> | void {
    const scriptKeys = [...this.gateKeys(keys, consumerId), ...items.map(([, , key]) => keys.concurrencyWaiting(key))];
    const args: Array<string | number> = [keys.group(consumerId), Date.now(), wakeChannel(keys), mode];
    args.push(...(mode === 'dead' ? deadLetter : ['', '', '']));
    for (const item of items) args.push(...item);
    return !isPipeline(target)
      ? LuaScripts.call(target, 'gate-release', scriptKeys, args)
      : LuaScripts.queue(this.client, target, 'gate-release', scriptKeys, args);
  }

  /** Each key of a queue that holds slots, has tasks waiting, or has a run-time limit. */
  private async concurrencyStats(queue: string): Promise<ConcurrencyKeyStats[]> {
    this.assertOpen();
    const keys = this.keys(queue);
    const [held, limits, overrides] = (await execPipeline(
      this.client.pipeline().hgetall(keys.concurrencyHeld).hgetall(keys.concurrencyLimits).hgetall(keys.concurrencyOverrides),
    )) as [Record<string, string>, Record<string, string>, Record<string, string>];
    const names = [...new Set([...Object.keys(held), ...Object.keys(limits), ...Object.keys(overrides)])].sort();
    if (names.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const key of names) pipeline.llen(keys.concurrencyWaiting(key));
    const waiting = (await execPipeline(pipeline)) as number[];
    return names.map((key, i) => ({
      key,
      running: Number(held[key] ?? 0),
      waiting: waiting[i] ?? 0,
      limit: Number(overrides[key] ?? limits[key] ?? 1),
    }));
  }

  async nack(delivery: Delivery, options: NackOptions): Promise<void> {
    this.assertOpen();
    const keys = this.keys(delivery.queue);
    const receipt = LeaseReceipt.parse(delivery.receipt);
    const envelope = options.envelope ?? delivery.envelope;
    const now = Date.now();
    const delay = Math.max(options.delayMs ?? 0, (envelope.notBefore ?? 0) - now, 0);
    const head = [keys.group(receipt.consumerId), keys.broadcast ? '0' : '1', receipt.member, receipt.entryId];
    const stream = keys.stream(receipt.band);
    const leases = keys.leases(receipt.consumerId);
    const keyed = keys.broadcast ? undefined : concurrencyKeyOf(delivery.envelope);
    if (!options.requeue && keyed !== undefined) {
      await this.releaseKeyed(this.client, keys, receipt.consumerId, 'ack', [[receipt.band, receipt.entryId, keyed.key]], []);
    } else if (!options.requeue) {
      await LuaScripts.call(this.client, 'requeue', [leases, stream, stream], [...head, 'drop', '', '', receipt.deliveryCount]);
    } else if (keys.broadcast) {
      // a broadcast stays in this subscriber's pending list and is re-leased to it when due
      await LuaScripts.call(
        this.client,
        'requeue',
        [leases, stream, stream],
        [...head, 'lease', delay, now + delay, receipt.deliveryCount, wakeChannel(keys)],
      );
    } else if (delay > 0) {
      const member = this.delayedMember(keys, envelope, encodeEnvelope(envelope));
      await LuaScripts.call(
        this.client,
        'requeue',
        [leases, stream, keys.delayed],
        [...head, 'delay', member, now + delay, receipt.deliveryCount, wakeChannel(keys)],
      );
    } else {
      const target = keys.stream(keys.bandOf(envelope.priority));
      await LuaScripts.call(
        this.client,
        'requeue',
        [leases, stream, target],
        [...head, 'stream', this.visibility(envelope), encodeEnvelope(envelope), receipt.deliveryCount],
      );
    }
  }

  async extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void> {
    this.assertOpen();
    if (deliveries.length === 0) return;
    // The server adds leaseMs to its own clock when the renewal lands (lease.lua): a renewal held up
    // by an outage still grants the whole lease. Locally the lease counts from now, which is sooner.
    const expiresAt = Date.now() + leaseMs;
    const byLeaseKey = new Map<string, Array<string | number>>();
    for (const delivery of deliveries) {
      const receipt = LeaseReceipt.parse(delivery.receipt);
      const key = this.keys(delivery.queue).leases(receipt.consumerId);
      let args = byLeaseKey.get(key);
      if (args === undefined) byLeaseKey.set(key, (args = ['XX']));
      args.push(leaseMs, receipt.member);
      (delivery as { leaseExpiresAt: number }).leaseExpiresAt = expiresAt;
    }
    const pipeline = this.client.pipeline();
    for (const [key, args] of byLeaseKey) LuaScripts.queue(this.client, pipeline, 'lease', [key], args);
    await execPipeline(pipeline);
  }

  async deadLetter(delivery: Delivery, reason: string, meta: Record<string, unknown> = {}): Promise<void> {
    this.assertOpen();
    const receipt = LeaseReceipt.parse(delivery.receipt);
    const letter: DeadLetter = {
      id: delivery.envelope.id,
      queue: delivery.queue,
      reason,
      meta,
      deadAt: Date.now(),
      envelope: delivery.envelope,
    };
    const keys = this.keys(delivery.queue);
    const keyed = keys.broadcast ? undefined : concurrencyKeyOf(delivery.envelope);
    if (keyed === undefined) {
      await this.writeDeadLetter(this.client, keys, receipt, letter);
      return;
    }
    await this.releaseKeyed(
      this.client,
      keys,
      receipt.consumerId,
      'dead',
      [[receipt.band, receipt.entryId, keyed.key]],
      [letter.id, letter.deadAt, JSON.stringify(letter)],
    );
  }

  /** Dead-letters a leased stream entry (used by the consumer for malformed entries). */
  writeDeadLetter(
    target: RedisClient | ChainableCommander,
    keys: QueueKeys,
    receipt: LeaseReceipt,
    letter: DeadLetter,
  ): Promise<unknown> | void {
    const stream = keys.stream(receipt.band);
    const args = [
      keys.group(receipt.consumerId),
      keys.broadcast ? '0' : '1',
      receipt.member,
      receipt.entryId,
      letter.id,
      letter.deadAt,
      JSON.stringify(letter),
      receipt.deliveryCount,
    ];
    const scriptKeys = [keys.leases(receipt.consumerId), stream, keys.deadLetters, keys.deadLetterIndex];
    return !isPipeline(target)
      ? LuaScripts.call(target, 'dead-letter', scriptKeys, args)
      : LuaScripts.queue(this.client, target, 'dead-letter', scriptKeys, args);
  }

  async listDeadLetters(queue: string, options: { limit?: number; offset?: number } = {}): Promise<DeadLetterPage> {
    this.assertOpen();
    const keys = this.keys(queue);
    const offset = Math.max(0, options.offset ?? 0);
    const stop = options.limit === undefined ? -1 : offset + Math.max(0, options.limit) - 1;
    if (stop !== -1 && stop < offset) return { entries: [], total: await this.client.zcard(keys.deadLetterIndex) };
    const [ids, total] = (await execPipeline(
      this.client.pipeline().zrange(keys.deadLetterIndex, offset, String(stop)).zcard(keys.deadLetterIndex),
    )) as [string[], number];
    return { entries: await this.readDeadLetters(keys, ids), total };
  }

  async getDeadLetter(queue: string, id: string): Promise<DeadLetter | null> {
    this.assertOpen();
    const raw = await this.client.hget(this.keys(queue).deadLetters, id);
    return raw === null ? null : (JSON.parse(raw) as DeadLetter);
  }

  async replayDeadLetters(queue: string, options: ReplayOptions = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    const keys = this.keys(queue);
    let letters: DeadLetter[];
    if (options.ids !== undefined) {
      letters = (await this.readDeadLetters(keys, [...options.ids])).sort((a, b) => a.deadAt - b.deadAt || (a.id < b.id ? -1 : 1));
    } else {
      letters = await this.readDeadLetters(keys, await this.client.zrange(keys.deadLetterIndex, 0, '-1'));
    }
    letters = letters.filter((letter) => letter.envelope !== undefined);
    if (options.limit !== undefined) letters = letters.slice(0, Math.max(0, options.limit));
    if (options.dryRun || letters.length === 0) return letters;
    const now = Date.now();
    const transaction = this.client.multi();
    for (const letter of letters) {
      const envelope: Envelope = startedOver(letter.envelope!, queue);
      if (options.delayMs !== undefined && options.delayMs > 0) envelope.notBefore = now + options.delayMs;
      else delete envelope.notBefore;
      this.enqueueWrite(transaction, keys, envelope, encodeEnvelope(envelope), now);
      transaction.hdel(keys.deadLetters, letter.id).zrem(keys.deadLetterIndex, letter.id);
    }
    await execPipeline(transaction);
    return letters;
  }

  async purgeDeadLetters(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.assertOpen();
    const keys = this.keys(queue);
    if (options.ids !== undefined) {
      if (options.ids.length === 0) return 0;
      const [removed] = (await execPipeline(
        this.client
          .multi()
          .hdel(keys.deadLetters, ...options.ids)
          .zrem(keys.deadLetterIndex, ...options.ids),
      )) as [number, number];
      return removed;
    }
    const [total] = (await execPipeline(this.client.multi().zcard(keys.deadLetterIndex).del(keys.deadLetters, keys.deadLetterIndex))) as [
      number,
    ];
    return total;
  }

  async pending(queue: string): Promise<number> {
    const [pending] = await this.counts(queue);
    let waiting = 0;
    for (const key of await this.concurrencyStats(queue)) waiting += key.waiting;
    return pending + waiting;
  }

  async inflight(queue: string): Promise<number> {
    return (await this.counts(queue))[1];
  }

  async purge(queue: string): Promise<number> {
    this.assertOpen();
    const keys = this.keys(queue);
    let purged = 0;
    for (;;) {
      const batch = (await LuaScripts.call(this.client, 'purge', [keys.delayed, ...keys.streams], [keys.group(''), PURGE_BATCH])) as number;
      purged += batch;
      if (batch < PURGE_BATCH) break;
    }
    // Keyed tasks waiting for a slot go too, and the slot counts start over: the purged tasks held
    // some, and the leased ones give theirs back (never below 0) as they finish.
    const stats = await this.concurrencyStats(queue);
    if (stats.length === 0) return purged;
    const pipeline = this.client.multi();
    for (const key of stats) {
      purged += key.waiting;
      pipeline.del(keys.concurrencyWaiting(key.key));
    }
    pipeline.del(keys.concurrencyHeld, keys.concurrencyLimits);
    await execPipeline(pipeline);
    return purged;
  }

  async listQueues(): Promise<string[]> {
    this.assertOpen();
    const namespace = this.connection.namespace;
    const [queues, broadcasts] = (await execPipeline(
      this.client.pipeline().smembers(`${namespace}:queues`).smembers(`${namespace}:broadcasts`),
    )) as [string[], string[]];
    return [...queues.sort(), ...broadcasts.sort()];
  }

  protected override async closeResources(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    this.dueSignal.close();
  }

  /** Queues the settle script of one source's lease members on a connection or pipeline. */
  settle(
    target: RedisClient | ChainableCommander,
    keys: QueueKeys,
    consumerId: string,
    members: readonly string[],
  ): Promise<unknown> | void {
    // Only the streams of the bands these members are in (usually one): fewer arguments to send.
    const bands = new Set<string>();
    for (const member of members) bands.add(member.slice(0, member.indexOf(':')));
    const streams: string[] = [];
    for (const band of bands) streams.push(keys.stream(band));
    const scriptKeys = [keys.leases(consumerId), ...streams];
    const args = [keys.group(consumerId), keys.broadcast ? '0' : '1', streams.length, ...bands, ...members];
    return !isPipeline(target)
      ? LuaScripts.call(target, 'settle', scriptKeys, args)
      : LuaScripts.queue(this.client, target, 'settle', scriptKeys, args);
  }

  private async counts(queue: string): Promise<[number, number]> {
    this.assertOpen();
    const keys = this.keys(queue);
    return (await LuaScripts.call(this.client, 'queue-counts', [keys.leases(''), keys.delayed, ...keys.streams], [])) as [number, number];
  }

  /** Queues an envelope's write on a pipeline, or sends it on the client (then await the result). */
  private enqueueWrite(target: ChainableCommander | RedisClient, keys: QueueKeys, envelope: Envelope, json: string, now: number): unknown {
    const keyed = keys.broadcast ? undefined : concurrencyKeyOf(envelope);
    if (keyed !== undefined) {
      const band = keys.bandOf(envelope.priority);
      const scriptKeys = [
        keys.concurrencyHeld,
        keys.concurrencyLimits,
        keys.concurrencyOverrides,
        keys.concurrencyWaiting(keyed.key),
        keys.stream(band),
        keys.delayed,
      ];
      const notBefore = envelope.notBefore !== undefined && envelope.notBefore > now ? envelope.notBefore : 0;
      const args = [keyed.key, keyed.limit, band, this.visibility(envelope), notBefore, json, now, wakeChannel(keys)];
      return !isPipeline(target)
        ? LuaScripts.call(target, 'gate-publish', scriptKeys, args)
        : LuaScripts.queue(this.client, target, 'gate-publish', scriptKeys, args);
    }
    if (envelope.notBefore !== undefined && envelope.notBefore > now) {
      // a script, so that a task due before every other one wakes the idle consumers (delay.lua)
      const args = [envelope.notBefore, this.delayedMember(keys, envelope, json), wakeChannel(keys)];
      return !isPipeline(target)
        ? LuaScripts.call(target, 'delay', [keys.delayed], args)
        : LuaScripts.queue(this.client, target, 'delay', [keys.delayed], args);
    } else if (keys.broadcast) {
      return target.xadd(keys.streams[0]!, 'MAXLEN', '~', this.options.broadcastMaxLen, '*', 'v', this.visibility(envelope), 'e', json);
    }
    return target.xadd(keys.stream(keys.bandOf(envelope.priority)), '*', 'v', this.visibility(envelope), 'e', json);
  }

  private delayedMember(keys: QueueKeys, envelope: Envelope, json: string): string {
    return `${keys.bandOf(envelope.priority)}:${this.visibility(envelope)}:${json}`;
  }

  private visibility(envelope: Envelope): number {
    const ms = envelope.visibilityTimeoutMs;
    return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : this.options.defaultVisibilityTimeoutMs;
  }

  private registryKey(keys: QueueKeys): string {
    return keys.broadcast ? `${this.connection.namespace}:broadcasts` : `${this.connection.namespace}:queues`;
  }

  private async readDeadLetters(keys: QueueKeys, ids: string[]): Promise<DeadLetter[]> {
    if (ids.length === 0) return [];
    const raws = await this.client.hmget(keys.deadLetters, ...ids);
    const letters: DeadLetter[] = [];
    for (const raw of raws) if (raw !== null) letters.push(JSON.parse(raw) as DeadLetter);
    return letters;
  }
}
