import type { ChainableCommander } from 'ioredis';
import type { BrokerConsumer, DeadLetter, Delivery } from '../../sdk/contracts/index.js';
import { decodeEnvelope } from '../../sdk/envelope.js';
import { MalformedEnvelopeError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import { BlockingLine } from './blocking-line.js';
import { wakeChannel, type DueSignal } from './due-signal.js';
import { hashSlot } from './hash-slot.js';
import { LeaseReceipt } from './lease-receipt.js';
import { LuaScripts } from './lua-scripts.js';
import { QUEUE_GROUP, type QueueKeys } from './queue-keys.js';
import { execPipeline, execPipelineSettled, type RedisClient, type RedisConnection } from './redis-connection.js';
import type { ResolvedBrokerOptions } from './redis-options.js';

/** What a consumer uses of its broker (a RedisBroker). */
export interface ConsumerBroker {
  readonly connection: RedisConnection;
  readonly options: ResolvedBrokerOptions;
  readonly dueSignal: DueSignal;
  readonly isClosed: boolean;
  extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void>;
  writeDeadLetter(
    target: RedisClient | ChainableCommander,
    keys: QueueKeys,
    receipt: LeaseReceipt,
    letter: DeadLetter,
  ): Promise<unknown> | void;
}

/** One queue or broadcast subscription of a consumer, with its fetch script arguments prepared. */
interface Source {
  keys: QueueKeys;
  group: string;
  consumerId: string;
  scriptKeys: string[];
}

/** What an idle fetch waits for: new entries after `ids` in `streams`, or the time `until`. */
interface WakePlan {
  streams: string[];
  ids: string[];
  until: number;
}

/** The streams of a wait one blocking command may name: all of them, or on a cluster those of one slot. */
interface ReadGroup {
  slot: number | undefined;
  streams: string[];
  ids: string[];
}

/** A leased entry whose payload is not an envelope. */
interface MalformedEntry {
  source: Source;
  receipt: LeaseReceipt;
  raw: unknown;
  error: string;
}

type FetchReply = [Array<string | number | string[]>, Array<string>?];

/** An XREADGROUP reply: per stream, its entries as [id, flat field list]. */
type ReadReply = Array<[string, Array<[string, string[]]>]>;

/**
 * The streams of an XREAD/XREADGROUP reply: RESP2 sends a list of [stream, entries] pairs, RESP3
 * a map, which ioredis flattens to stream, entries, stream, entries…; null (timed out) is none.
 */
function streamsOf(reply: unknown): ReadReply {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (Array.isArray(reply[0])) return reply as ReadReply;
  const pairs: ReadReply = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i] as string, reply[i + 1] as Array<[string, string[]]>]);
  return pairs;
}

/** How long after the fetch script found a consumer idle it may block again without running it. */
const REBLOCK_WITHIN_MS = 100;

/**
 * How long after the fetch script filled a whole batch from one band the next fetches may read that
 * band with busy-read.lua instead (see readBusy): due delayed tasks, lapsed leases and tasks of
 * other bands wait that much longer at most while a queue is busy, as the first two do for an idle
 * consumer's blocking reads.
 */
const BUSY_READS_WITHIN_MS = 100;

/**
 * How much longer than its deadline a blocking read is told to wait when a local timer ends it
 * (CLIENT UNBLOCK) at the deadline: the server checks BLOCK timeouts only on its cron (10 times a
 * second by default), up to 100 ms late, while a timer is on time. The server's own timeout then
 * only matters when the unblock could not be sent.
 */
const SERVER_TIMEOUT_SLACK_MS = 250;

/**
 * ioredis connection problems (as opposed to script or command errors) are retried by fetch; so is a script the server lost (the
 * retry loads it again).
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOSCRIPT)/;

/**
 * A consumer of the Redis broker. fetch runs the fetch script (one EVALSHA per source: promote due
 * delayed tasks, re-lease expired leases, read new entries highest band first), or while one plain
 * queue is busy a read-and-lease script of the band the script last filled a batch from (readBusy);
 * only when every source is empty does it block, on its own connection. A consumer of plain queues blocks in
 * XREADGROUP itself, so a task that arrives is leased by the same reply that wakes it (its lease
 * is recorded right after; should the consumer die in between, the fetch script's sweep takes the
 * entry over once it has been pending without a lease for the default visibility timeout). A
 * consumer with broadcast subscriptions (one group per subscriber) blocks in XREAD COUNT 1 on the
 * streams' newest ids instead: a wake-up that leases nothing. The wait is also cut short, by a
 * local timer and CLIENT UNBLOCK, when a delayed task falls due or a lease runs out: the earliest
 * the fetch script saw, or an earlier one announced on the queue's wake channel since (a delayed
 * enqueue, a retry backoff, a rate-limit deferral: see DueSignal).
 */
export class RedisConsumer implements BrokerConsumer {
  private readonly sources: Source[];
  /** The blocking connections: one ('') on a server; on a cluster one per hash slot waited on. */
  private readonly lines = new Map<string, BlockingLine>();
  /** The lines of the blocking reads under way. */
  private activeLines: BlockingLine[] = [];
  private waiting: Promise<unknown> | undefined;
  private buffer: Delivery[] = [];
  private closed = false;
  /** The group of every source when they all share one (plain queues): the idle wait then leases. */
  private readonly sharedGroup: string | undefined;
  /** Each stream's source and band tag, to read a blocking XREADGROUP reply. */
  private readonly streamSources = new Map<string, { source: Source; band: string }>();
  /** When the next fetch sweeps for pending entries without a lease (epoch ms). */
  private nextSweepAt = 0;
  /** Until when (epoch ms) a fetch may read the stream of `busyBand` without the fetch script (see readBusy). */
  private busyUntil = 0;
  /** The band whose stream the fetch script's last whole batch came from. */
  private busyBand = '';
  /** Whether busy reads are open to this consumer: one plain queue, on one server. */
  private readonly busyReads: boolean;
  /** The fetch script's last "all idle" answer, while a blocking read is all that happened since. */
  private idleSince: { plan: WakePlan; at: number } | undefined;
  /** The earliest due time announced on a wake channel since the fetch script last ran (epoch ms). */
  private announcedDue = Infinity;
  /** When the blocking read under way is to end (epoch ms); undefined when none is. */
  private waitDeadline: number | undefined;
  /** Ends the blocking read under way at its deadline. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;

  /** Made by RedisBroker.consumer(); call open() before fetch. */
  constructor(
    private readonly broker: ConsumerBroker,
    keys: readonly QueueKeys[],
    /** The worker id: the consumer name in each group, and the group of each broadcast subscription. */
    readonly consumerId: string,
    private readonly onClose: () => void,
  ) {
    this.sources = keys.map((queueKeys) => ({
      keys: queueKeys,
      group: queueKeys.group(consumerId),
      consumerId: queueKeys.broadcast ? consumerId : '',
      scriptKeys: [queueKeys.leases(consumerId), queueKeys.delayed, ...queueKeys.streams],
    }));
    for (const source of this.sources) {
      source.keys.streams.forEach((stream, i) => this.streamSources.set(stream, { source, band: source.keys.bands[i]! }));
    }
    this.sharedGroup = this.sources.length > 0 && this.sources.every((source) => !source.keys.broadcast) ? QUEUE_GROUP : undefined;
    this.busyReads = this.sources.length === 1 && this.sharedGroup !== undefined && broker.connection.cluster === undefined;
  }

  /** Creates the consumer groups (a broadcast subscription starts at the channel's end) and the blocking connection. */
  async open(): Promise<void> {
    const pipeline = this.broker.connection.client.pipeline();
    for (const source of this.sources) {
      for (const stream of source.keys.streams)
        pipeline.xgroup('CREATE', stream, source.group, source.keys.broadcast ? '$' : '0', 'MKSTREAM');
    }
    for (const [error] of await execPipelineSettled(pipeline)) {
      if (error && !error.message.includes('BUSYGROUP')) throw error;
    }
    // on a cluster, lines are opened per slot when a wait needs them
    if (this.broker.connection.cluster === undefined) this.lines.set('', await BlockingLine.open(this.broker.connection, this.role));
    // subscribed before the first fetch script run: whatever falls due after it is announced
    this.stopListening = await this.broker.dueSignal.listen(
      this.sources.map((source) => wakeChannel(source.keys)),
      (dueAt) => this.announce(dueAt),
    );
  }

  /**
   * Work falls due at `dueAt` (0: at once): a blocking read that would last longer is ended then,
   * and a wait not yet begun is planned with it.
   */
  private announce(dueAt: number): void {
    if (this.closed) return;
    if (dueAt < this.announcedDue) this.announcedDue = dueAt;
    if (this.waitDeadline !== undefined && dueAt < this.waitDeadline) this.endWaitAt(dueAt);
  }

  private get role(): string {
    return `consumer:${this.consumerId}`;
  }

  /** Sets the timer that unblocks the blocking connections at `deadline`. */
  private endWaitAt(deadline: number): void {
    this.waitDeadline = deadline;
    clearTimeout(this.deadlineTimer);
    // +1: a timer may fire within the millisecond before Date.now() reaches the deadline
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = undefined;
        if (this.waiting !== undefined) for (const line of this.activeLines) line.unblock();
      },
      Math.max(0, deadline - Date.now()) + 1,
    );
  }

  async fetch(max: number, signal: AbortSignal): Promise<Delivery[]> {
    if (max <= 0) return [];
    let failures = 0;
    while (!signal.aborted && !this.closed) {
      try {
        let wake = this.recentWake();
        if (wake === undefined) {
          const batch = await this.take(max);
          failures = 0;
          if (batch.deliveries.length > 0) return batch.deliveries;
          wake = batch.wake;
          if (wake !== undefined && this.sharedGroup !== undefined) this.idleSince = { plan: wake, at: Date.now() };
        }
        if (wake !== undefined) {
          await this.wait(wake, max, signal);
          // what a blocking XREADGROUP leased is handed out at once, without another fetch script call
          if (this.buffer.length > 0 && !signal.aborted && !this.closed) return this.buffer.splice(0, max);
          this.idleSince = undefined;
        }
      } catch (error) {
        this.idleSince = undefined;
        if (this.closed || signal.aborted) break;
        const reply = (error as Error).name === 'ReplyError' && !TRANSIENT_REPLY.test((error as Error).message);
        if (reply) throw error;
        // the connection dropped: ioredis reconnects by itself; try again with a capped backoff
        failures++;
        await settleWithin(undefined, signal, Math.min(2_000, 25 * 2 ** failures));
      }
    }
    return [];
  }

  /**
   * A consumer of plain queues that the fetch script found idle, and that has since only been
   * woken by its blocking read, blocks again at once instead of running the script after every
   * task: for up to {@link REBLOCK_WITHIN_MS} after that script run and before the plan's own
   * deadline. Due delayed tasks and expired leases are then picked up that much later at most.
   */
  private recentWake(): WakePlan | undefined {
    const idle = this.idleSince;
    if (idle === undefined || this.buffer.length > 0) return undefined;
    const now = Date.now();
    if (now - idle.at >= REBLOCK_WITHIN_MS || now >= idle.plan.until || now >= this.announcedDue) {
      this.idleSince = undefined;
      return undefined;
    }
    return idle.plan;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.stopListening?.();
    clearTimeout(this.deadlineTimer);
    const held = this.buffer;
    this.buffer = [];
    // entries read ahead but never handed out: lease them back to anyone at once
    if (held.length > 0 && !this.broker.isClosed) await this.broker.extendLeases(held, 0).catch(() => undefined);
    for (const line of this.lines.values()) line.close();
    this.lines.clear();
  }

  private async take(max: number): Promise<{ deliveries: Delivery[]; wake?: WakePlan }> {
    const deliveries = this.buffer.length > 0 ? this.buffer.splice(0, max) : [];
    if (deliveries.length >= max) return { deliveries };
    const wanted = max - deliveries.length;
    const now = Date.now();
    if (now < this.busyUntil && now < this.announcedDue) {
      const read = await this.readBusy(wanted);
      if (read.length > 0) {
        if (deliveries.length === 0) return { deliveries: read };
        const merged = deliveries.concat(read);
        sortDeliveries(merged);
        return { deliveries: merged };
      }
    }
    this.busyUntil = 0;
    // the script sees every delayed task added so far; announcements from now on are news
    this.announcedDue = Infinity;
    const client = this.broker.connection.client;
    const options = this.broker.options;
    let sweepIdle = 0;
    if (now >= this.nextSweepAt) {
      sweepIdle = options.defaultVisibilityTimeoutMs;
      this.nextSweepAt = now + Math.max(1_000, Math.floor(options.defaultVisibilityTimeoutMs / 2));
    }
    const argsOf = (source: Source): Array<string | number> => [
      source.group,
      this.consumerId,
      now,
      wanted,
      options.defaultVisibilityTimeoutMs,
      options.promoteBatch,
      sweepIdle,
      ...source.keys.bands,
    ];
    let replies: FetchReply[];
    if (this.sources.length === 1) {
      const source = this.sources[0]!;
      replies = [(await LuaScripts.call(client, 'fetch', source.scriptKeys, argsOf(source))) as FetchReply];
    } else {
      const pipeline = client.pipeline();
      for (const source of this.sources) LuaScripts.queue(client, pipeline, 'fetch', source.scriptKeys, argsOf(source));
      replies = (await execPipeline(pipeline)) as FetchReply[];
    }

    let sort = this.sources.length > 1 || deliveries.length > 0;
    // The band every entry of this batch came from, '' when none yet, undefined when several.
    let onlyBand: string | undefined = '';
    const malformed: MalformedEntry[] = [];
    const wake: WakePlan = { streams: [], ids: [], until: now + options.blockMs };
    let idle = true;
    for (let s = 0; s < replies.length; s++) {
      const source = this.sources[s]!;
      const [entries, wakeInfo] = replies[s]!;
      for (let i = 0; i < entries.length; i += 5) {
        const band = entries[i] as string;
        const entryId = entries[i + 1] as string;
        const count = Number(entries[i + 2]);
        if (onlyBand !== band) onlyBand = onlyBand === '' ? band : undefined;
        // the envelope JSON alone for the usual new entry, else the entry's field list
        const fields = entries[i + 4] as string | string[];
        const receipt = LeaseReceipt.format(band, entryId, count, source.consumerId);
        const raw = typeof fields === 'string' ? fields : payloadOf(fields);
        try {
          if (typeof raw !== 'string') throw new MalformedEnvelopeError('the stream entry has no "e" field');
          const envelope = decodeEnvelope(raw);
          // the script ran at `now` or later, so the lease it started ends no sooner than this
          deliveries.push({
            envelope,
            queue: source.keys.address,
            receipt,
            leaseExpiresAt: now + Number(entries[i + 3]),
            redeliveries: count - 1,
          });
          if (count > 1) sort = true;
        } catch (error) {
          if (!(error instanceof MalformedEnvelopeError)) throw error;
          malformed.push({ source, receipt: LeaseReceipt.parse(receipt), raw, error: error.message });
        }
      }
      if (wakeInfo === undefined) {
        idle = false;
        continue;
      }
      const [nextDue, nextLease, ...ids] = wakeInfo;
      if (nextDue) wake.until = Math.min(wake.until, Number(nextDue));
      // ms on the server's clock (leases run on it): from `now`, the wait ends no later than the lease
      if (nextLease !== '' && nextLease !== undefined) wake.until = Math.min(wake.until, now + Number(nextLease));
      wake.streams.push(...source.keys.streams);
      wake.ids.push(...ids);
    }
    if (malformed.length > 0) await this.deadLetterMalformed(malformed);
    if (sort) sortDeliveries(deliveries);
    if (deliveries.length > max) this.buffer = deliveries.splice(max).concat(this.buffer);
    // A whole batch from one band: the queue is busy, and the next fetches may read that band's
    // stream without the script for a while (from one stream, COUNT bounds what is leased).
    if (this.busyReads && !idle && deliveries.length >= max && onlyBand) {
      this.busyBand = onlyBand;
      this.busyUntil = now + BUSY_READS_WITHIN_MS;
    }
    return idle && deliveries.length === 0 && malformed.length === 0 ? { deliveries, wake } : { deliveries };
  }

  /**
   * Up to `wanted` new entries of the busy band's stream, read and leased in one atomic step by
   * busy-read.lua (XREADGROUP without BLOCK + the lease writes), so that no entry is pending
   * without a lease even when the reply is lost and ioredis sends the call again after a
   * reconnect: the first run's entries then wait for their lease to run out, as a lost fetch
   * script reply's do. What it skips of the fetch script's work: promoting due delayed tasks,
   * taking over lapsed leases, and looking at the other bands, so a task of a higher priority
   * published meanwhile waits for the script, at most BUSY_READS_WITHIN_MS. Empty when the read
   * failed or found too little, which ends the busy spell: the script runs next (and makes a
   * vanished group again).
   */
  private async readBusy(wanted: number): Promise<Delivery[]> {
    const source = this.sources[0]!;
    const band = this.busyBand;
    const now = Date.now();
    let entries: Array<string | number | string[]>;
    try {
      entries = (await LuaScripts.call(
        this.broker.connection.client,
        'busy-read',
        [source.scriptKeys[0]!, source.keys.stream(band)],
        [QUEUE_GROUP, this.consumerId, wanted, band, this.broker.options.defaultVisibilityTimeoutMs],
      )) as Array<string | number | string[]>;
    } catch {
      this.busyUntil = 0;
      return [];
    }
    const read: Delivery[] = [];
    let malformed: MalformedEntry[] | undefined;
    for (let i = 0; i < entries.length; i += 3) {
      const entryId = entries[i] as string;
      const fields = entries[i + 2] as string | string[];
      const receipt = LeaseReceipt.format(band, entryId, 1, source.consumerId);
      const raw = typeof fields === 'string' ? fields : payloadOf(fields);
      try {
        if (typeof raw !== 'string') throw new MalformedEnvelopeError('the stream entry has no "e" field');
        read.push({
          envelope: decodeEnvelope(raw),
          queue: source.keys.address,
          receipt,
          leaseExpiresAt: now + Number(entries[i + 1]),
          redeliveries: 0,
        });
      } catch (error) {
        if (!(error instanceof MalformedEnvelopeError)) throw error;
        (malformed ??= []).push({ source, receipt: LeaseReceipt.parse(receipt), raw, error: error.message });
      }
    }
    if (malformed !== undefined) await this.deadLetterMalformed(malformed);
    if (entries.length < wanted * 3) this.busyUntil = 0;
    return read;
  }

  /**
   * Blocks until the plan's streams have news (or its time comes). Plain queues are read with a
   * blocking XREADGROUP whose entries are leased and put in the buffer; otherwise XREAD wakes the
   * caller to run the fetch script again.
   */
  private async wait(plan: WakePlan, max: number, signal: AbortSignal): Promise<void> {
    const { blockMs } = this.broker.options;
    const deadline = Math.min(plan.until, this.announcedDue);
    const remaining = deadline - Date.now();
    if (remaining <= 0) return;
    if (this.waiting !== undefined) {
      // an earlier wait is still blocked on a connection (it was aborted): let it finish first
      await settleWithin(this.waiting, signal, Math.min(blockMs, Math.ceil(remaining)) + 1_000);
      return;
    }
    const groups = this.readGroups(plan);
    const lines = await Promise.all(groups.map((group) => this.lineFor(group.slot)));
    // a deadline within blockMs is kept by a local timer (precise); the server's timeout is the fallback
    const timed = remaining < blockMs && lines.every((line) => line.identified);
    const timeout = Math.max(1, Math.min(blockMs, Math.ceil(remaining) + (timed ? SERVER_TIMEOUT_SLACK_MS : 0)));
    const reads = groups.map((group, i) => {
      const line = lines[i]!;
      const command =
        this.sharedGroup === undefined
          ? line.client.call('XREAD', 'COUNT', 1, 'BLOCK', timeout, 'STREAMS', ...group.streams, ...group.ids)
          : line.client
              .call(
                'XREADGROUP',
                'GROUP',
                this.sharedGroup,
                this.consumerId,
                'COUNT',
                max,
                'BLOCK',
                timeout,
                'STREAMS',
                ...group.streams,
                ...group.streams.map(() => '>'),
              )
              .then((reply) => this.leaseRead(streamsOf(reply)));
      return command.catch(() => {
        // a failed read (the connection dropped, the group is gone after a restart, the slot moved): run the fetch script next
        this.idleSince = undefined;
        if (group.slot !== undefined) this.dropLine(group.slot, line);
      });
    });
    const all = Promise.all(reads).finally(() => {
      if (this.waiting === all) {
        this.waiting = undefined;
        this.activeLines = [];
      }
    });
    this.waiting = all;
    this.activeLines = lines;
    if (timed) this.endWaitAt(deadline);
    else this.waitDeadline = deadline;
    try {
      // the first line that hears news ends the wait; the others are unblocked
      const aborted = await settleWithin(reads.length === 1 ? all : Promise.race(reads), signal, timeout + 1_000);
      if (aborted || lines.length > 1) for (const line of lines) line.unblock();
      if (lines.length > 1) await settleWithin(all, signal, timeout + 1_000);
    } finally {
      this.waitDeadline = undefined;
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
  }

  /** The streams of a plan as blocking commands may name them: together, or on a cluster one group per hash slot. */
  private readGroups(plan: WakePlan): ReadGroup[] {
    if (this.broker.connection.cluster === undefined) return [{ slot: undefined, streams: plan.streams, ids: plan.ids }];
    const bySlot = new Map<number, ReadGroup>();
    plan.streams.forEach((stream, i) => {
      const slot = hashSlot(stream);
      let group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, (group = { slot, streams: [], ids: [] }));
      group.streams.push(stream);
      group.ids.push(plan.ids[i]!);
    });
    return [...bySlot.values()];
  }

  /** The blocking line for a slot (undefined: the one line off a cluster), opened anew when its node is gone or no longer serves it. */
  private async lineFor(slot: number | undefined): Promise<BlockingLine> {
    const name = slot === undefined ? '' : String(slot);
    const line = this.lines.get(name);
    if (line?.usableFor(slot)) return line;
    if (line !== undefined) this.dropLine(slot!, line);
    const opened = await BlockingLine.open(this.broker.connection, this.role, slot);
    if (this.closed) {
      opened.close();
      throw new Error('the consumer is closed');
    }
    this.lines.set(name, opened);
    return opened;
  }

  private dropLine(slot: number, line: BlockingLine): void {
    if (this.lines.get(String(slot)) === line) this.lines.delete(String(slot));
    line.close();
  }

  /**
   * Records the leases of entries a blocking XREADGROUP delivered (not awaited: the settle of each
   * entry goes out later on the same connection) and buffers them, highest priority first. A
   * consumer closed meanwhile leases them for no time, so that any consumer takes them at once.
   */
  private async leaseRead(reply: ReadReply): Promise<void> {
    if (reply.length === 0) return;
    const now = Date.now();
    const { defaultVisibilityTimeoutMs } = this.broker.options;
    const read: Delivery[] = [];
    const malformed: MalformedEntry[] = [];
    const leaseArgs = new Map<string, Array<string | number>>();
    for (const [stream, entries] of reply) {
      const origin = this.streamSources.get(stream);
      if (origin === undefined) continue;
      const { source, band } = origin;
      const leaseKey = source.scriptKeys[0]!;
      let args = leaseArgs.get(leaseKey);
      if (args === undefined) leaseArgs.set(leaseKey, (args = ['NEW']));
      for (const [entryId, fields] of entries) {
        const leaseMs = this.closed ? 0 : visibilityOf(fields, defaultVisibilityTimeoutMs);
        const expires = now + leaseMs;
        args.push(leaseMs, `${band}:${entryId}`);
        const receipt = LeaseReceipt.format(band, entryId, 1, source.consumerId);
        const raw = payloadOf(fields);
        try {
          if (typeof raw !== 'string') throw new MalformedEnvelopeError('the stream entry has no "e" field');
          read.push({ envelope: decodeEnvelope(raw), queue: source.keys.address, receipt, leaseExpiresAt: expires, redeliveries: 0 });
        } catch (error) {
          if (!(error instanceof MalformedEnvelopeError)) throw error;
          malformed.push({ source, receipt: LeaseReceipt.parse(receipt), raw, error: error.message });
        }
      }
    }
    // Straight on the command connection (auto-pipelined), ahead of any settle of these entries;
    // a script, so that the lease starts when the server writes it (lease.lua), however late that is.
    const client = this.broker.connection.client;
    for (const [leaseKey, args] of leaseArgs)
      if (args.length > 1) LuaScripts.call(client, 'lease', [leaseKey], args).catch(() => undefined);
    if (malformed.length > 0) await this.deadLetterMalformed(malformed).catch(() => undefined);
    if (read.length === 0 || this.closed) return;
    if (this.buffer.length === 0 && reply.length === 1) {
      // one stream's entries, in stream order: nothing to merge
      this.buffer = read;
      return;
    }
    const merged = this.buffer.concat(read);
    sortDeliveries(merged);
    this.buffer = merged;
  }

  private async deadLetterMalformed(entries: readonly MalformedEntry[]): Promise<void> {
    const pipeline = this.broker.connection.client.pipeline();
    const deadAt = Date.now();
    for (const entry of entries) {
      const letter: DeadLetter = {
        id: uuidv7(),
        queue: entry.source.keys.address,
        reason: 'malformed-envelope',
        meta: { raw: entry.raw, error: entry.error, entryId: entry.receipt.entryId },
        deadAt,
      };
      this.broker.writeDeadLetter(pipeline, entry.source.keys, entry.receipt, letter);
    }
    await execPipeline(pipeline);
  }
}

/** The lease of an entry: its "v" field (ms), or the default. */
function visibilityOf(fields: readonly string[], fallback: number): number {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'v') {
      const parsed = Number(fields[i + 1]);
      return Number.isFinite(parsed) ? parsed : fallback;
    }
  }
  return fallback;
}

/** The `e` field of a stream entry, or (for a hand-written entry without one) all its fields. */
function payloadOf(fields: readonly string[]): unknown {
  const raw: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'e') return fields[i + 1];
    raw[fields[i]!] = fields[i + 1]!;
  }
  return raw;
}

/** Higher priority first; within a priority, the older stream entry first. */
function sortDeliveries(deliveries: Delivery[]): void {
  const keyed = deliveries.map((delivery) => {
    const receipt = LeaseReceipt.parse(delivery.receipt);
    const dash = receipt.entryId.indexOf('-');
    return { delivery, ms: Number(receipt.entryId.slice(0, dash)), seq: Number(receipt.entryId.slice(dash + 1)) };
  });
  keyed.sort((a, b) => b.delivery.envelope.priority - a.delivery.envelope.priority || a.ms - b.ms || a.seq - b.seq);
  for (let i = 0; i < keyed.length; i++) deliveries[i] = keyed[i]!.delivery;
}

/** Waits for `promise` (if any), the abort of `signal`, or `ms`, whichever comes first; true when aborted. */
function settleWithin(promise: Promise<unknown> | undefined, signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (aborted: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(aborted);
    };
    const onAbort = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    promise?.then(
      () => done(false),
      () => done(false),
    );
  });
}
