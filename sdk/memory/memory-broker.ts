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
} from '../contracts/broker.js';
import type { ConcurrencyControl } from '../contracts/concurrency-control.js';
import { broadcastAddress, broadcastChannel, type Envelope } from '../envelope.js';
import { ClosedError, ConfigError, QueueFullError } from '../errors.js';
import { droppedMeta, hasBoundedEnvelope, QUEUE_FULL_DROPPED_REASON, type QueueBound, queueBoundOf } from '../queue-bound.js';
import { concurrencyKeyOf } from '../concurrency-key.js';
import { ConcurrencyGate } from './concurrency-gate.js';
import { MemoryConsumer } from './memory-consumer.js';
import { MessageQueue, copyEnvelope, type StoredMessage } from './message-queue.js';
import { startedOver } from '../state-order.js';

/** One subscriber's copy of a broadcast channel, shared by its consumers with the same consumerId. */
interface Subscription {
  queue: MessageQueue;
  holders: number;
}

function clampPriority(priority: number): number {
  return Number.isFinite(priority) ? Math.min(9, Math.max(0, Math.round(priority))) : 0;
}

function copyDeadLetter(letter: DeadLetter): DeadLetter {
  const copy: DeadLetter = { ...letter, meta: { ...letter.meta } };
  if (letter.envelope !== undefined) copy.envelope = copyEnvelope(letter.envelope);
  return copy;
}

/**
 * The embedded broker: every queue lives in this process. Priority and FIFO order, delays, leases,
 * dead letters and broadcast fan-out behave as on Redis and Postgres, so examples and tests run
 * with no server. Time is checked lazily when a consumer fetches; a waiting consumer holds at most
 * one timer, and no message ever does.
 */
export class MemoryBroker implements Broker {
  private readonly queues = new Map<string, MessageQueue>();
  /** Every queue (plain and broadcast copies) by the receipt prefix it hands out. */
  private readonly queuesByReceiptPrefix = new Map<string, MessageQueue>();
  /** channel → consumerId → subscription; a known channel with no subscriber maps to an empty map. */
  private readonly channels = new Map<string, Map<string, Subscription>>();
  private readonly deadLetters = new Map<string, Map<string, DeadLetter>>();
  private readonly consumers = new Set<MemoryConsumer>();
  /** Per-key concurrency of each plain queue (see ConcurrencyGate). */
  private readonly gates = new Map<string, ConcurrencyGate>();
  private seq = 0;
  private queueCount = 0;
  private closed = false;

  /** Per-key concurrency: keyed messages wait in the broker until their key has a free slot. */
  readonly concurrency: ConcurrencyControl = {
    setLimit: async (queue, key, limit) => {
      this.assertOpen();
      this.gateOf(queue).setLimit(key, limit);
    },
    stats: async (queue) => {
      this.assertOpen();
      return this.gates.get(queue)?.stats() ?? [];
    },
  };

  /** Bounded queues (`stem-max-length`): checked in the same synchronous step as the publish. */
  readonly boundedQueues = true;

  /**
   * Queues each envelope, or fans a `broadcast://` one out to the channel's current subscribers.
   * A publish that does not fit a bounded `reject` queue is refused whole; a `drop-oldest` queue
   * dead-letters its oldest ready messages to make room.
   */
  async publish(envelopes: readonly Envelope[]): Promise<void | PublishReport> {
    this.assertOpen();
    const now = Date.now();
    const bounds = hasBoundedEnvelope(envelopes) ? this.boundsOf(envelopes) : undefined;
    if (bounds === undefined) {
      for (const envelope of envelopes) this.route(envelope, now);
      return;
    }
    for (const [queue, { bound, count }] of bounds) {
      if (bound.overflow === 'reject' && this.waiting(queue, now) + count > bound.maxLength) {
        throw new QueueFullError(
          queue,
          bound.maxLength,
          envelopes.map((envelope) => envelope.id),
        );
      }
    }
    const dropped: DeadLetter[] = [];
    for (let i = 0; i < envelopes.length; i++) {
      const envelope = envelopes[i]!;
      const bound = bounds.get(envelope.queue)?.bound;
      if (bound?.overflow === 'drop-oldest') {
        while (this.waiting(envelope.queue, now) >= bound.maxLength) {
          const letter = this.dropOldest(envelope.queue, bound, now);
          if (letter === undefined) {
            // Nothing ready to drop (the rest is delayed or waits for a key's slot): refused as with reject.
            throw new QueueFullError(
              envelope.queue,
              bound.maxLength,
              envelopes.slice(i).map((rest) => rest.id),
              dropped,
            );
          }
          dropped.push(letter);
        }
      }
      this.route(envelope, now);
    }
    return { dropped };
  }

  /** The bound and the number of envelopes of each bounded queue of a publish (the last envelope's bound wins), or undefined. */
  private boundsOf(envelopes: readonly Envelope[]): Map<string, { bound: QueueBound; count: number }> | undefined {
    let bounds: Map<string, { bound: QueueBound; count: number }> | undefined;
    for (const envelope of envelopes) {
      const bound = broadcastChannel(envelope.queue) === undefined ? queueBoundOf(envelope) : undefined;
      if (bound === undefined) continue;
      bounds ??= new Map();
      const seen = bounds.get(envelope.queue);
      bounds.set(envelope.queue, { bound, count: (seen?.count ?? 0) + 1 });
    }
    return bounds;
  }

  /** Messages of a plain queue waiting: ready, delayed, and keyed ones waiting for a slot. */
  private waiting(queue: string, now: number): number {
    const source = this.queues.get(queue);
    if (source === undefined) return 0;
    source.settle(now);
    return source.pendingCount + (this.gates.get(queue)?.waitingCount ?? 0);
  }

  /** Dead-letters the ready message of `queue` published longest ago (its key's slot freed); undefined when none is ready. */
  private dropOldest(queue: string, bound: QueueBound, now: number): DeadLetter | undefined {
    const message = this.queues.get(queue)?.takeOldestReady();
    if (message === undefined) return undefined;
    this.gates.get(queue)?.release(message.envelope);
    const letter: DeadLetter = {
      id: message.envelope.id,
      queue,
      reason: QUEUE_FULL_DROPPED_REASON,
      meta: droppedMeta(bound),
      deadAt: now,
      envelope: message.envelope,
    };
    this.keepDeadLetter(letter);
    return copyDeadLetter(letter);
  }

  /** Registers a consumer; its broadcast subscriptions take effect before this resolves. */
  async consumer(options: ConsumerOptions): Promise<BrokerConsumer> {
    this.assertOpen();
    if (typeof options.consumerId !== 'string' || options.consumerId === '') {
      throw new ConfigError('memory broker consumer: consumerId must be a non-empty string (the worker id)');
    }
    const sources = new Set<MessageQueue>();
    const channels = new Set(options.broadcasts ?? []);
    for (const queue of options.queues) {
      // A broadcast address among the queues means a subscription, not a queue of that name.
      const channel = broadcastChannel(queue);
      if (channel === undefined) sources.add(this.queueNamed(queue));
      else channels.add(channel);
    }
    for (const channel of channels) sources.add(this.subscribe(channel, options.consumerId));
    const consumer = new MemoryConsumer([...sources], (closed) => {
      this.consumers.delete(closed);
      for (const channel of channels) this.unsubscribe(channel, options.consumerId);
    });
    this.consumers.add(consumer);
    return consumer;
  }

  /** Deletes acked messages; stale receipts are ignored. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    this.assertOpen();
    for (const delivery of deliveries) {
      const queue = this.queueOfReceipt(delivery.receipt);
      const message = queue?.release(delivery.receipt);
      if (message !== undefined) this.gates.get(queue!.address)?.release(message.envelope);
    }
  }

  /** Requeues (at its old place, later, or as a new envelope at the back) or drops a delivery. */
  async nack(delivery: Delivery, options: NackOptions): Promise<void> {
    this.assertOpen();
    const queue = this.queueOfReceipt(delivery.receipt);
    const message = queue?.release(delivery.receipt);
    if (queue === undefined || message === undefined) return;
    if (!options.requeue) {
      this.gates.get(queue.address)?.release(message.envelope);
      return;
    }
    // Requeued (a retry, a deferral): it keeps its key's slot, so a key's order holds across retries.
    const now = Date.now();
    if (options.envelope === undefined) {
      message.redeliveries++;
    } else {
      // A replacement is a new message (a retry): it goes behind what is already waiting.
      message.envelope = copyEnvelope(options.envelope);
      message.priority = clampPriority(options.envelope.priority);
      message.seq = ++this.seq;
      message.redeliveries = 0;
    }
    message.notBefore = options.delayMs !== undefined && options.delayMs > 0 ? now + options.delayMs : (message.envelope.notBefore ?? 0);
    queue.enqueue(message, now);
  }

  /** Moves the leases of deliveries still held to `leaseMs` from now; stale receipts are ignored. */
  async extendLeases(deliveries: readonly Delivery[], leaseMs: number): Promise<void> {
    this.assertOpen();
    const expiresAt = Date.now() + leaseMs;
    for (const delivery of deliveries) this.queueOfReceipt(delivery.receipt)?.extend(delivery.receipt, expiresAt);
  }

  /**
   * Sets a leased message aside with its reason. A stale receipt is ignored: the message was
   * already redelivered to someone else, who now owns its fate.
   */
  async deadLetter(delivery: Delivery, reason: string, meta: Record<string, unknown> = {}): Promise<void> {
    this.assertOpen();
    const queue = this.queueOfReceipt(delivery.receipt);
    const message = queue?.release(delivery.receipt);
    if (queue === undefined || message === undefined) return;
    this.gates.get(queue.address)?.release(message.envelope);
    this.keepDeadLetter({
      id: message.envelope.id,
      queue: queue.address,
      reason,
      meta: { ...meta },
      deadAt: Date.now(),
      envelope: message.envelope,
    });
  }

  /** A page of a queue's dead letters, oldest first. */
  async listDeadLetters(queue: string, options: { limit?: number; offset?: number } = {}): Promise<DeadLetterPage> {
    this.assertOpen();
    const letters = [...(this.deadLetters.get(queue)?.values() ?? [])];
    const offset = Math.max(0, options.offset ?? 0);
    const end = options.limit === undefined ? undefined : offset + Math.max(0, options.limit);
    return { entries: letters.slice(offset, end).map(copyDeadLetter), total: letters.length };
  }

  /** One dead letter, or null. */
  async getDeadLetter(queue: string, id: string): Promise<DeadLetter | null> {
    this.assertOpen();
    const letter = this.deadLetters.get(queue)?.get(id);
    return letter === undefined ? null : copyDeadLetter(letter);
  }

  /** Publishes dead letters back with attempt 0, oldest first; letters with no envelope stay. */
  async replayDeadLetters(queue: string, options: ReplayOptions = {}): Promise<DeadLetter[]> {
    this.assertOpen();
    const letters = this.deadLetters.get(queue);
    if (letters === undefined) return [];
    const ids = options.ids === undefined ? undefined : new Set(options.ids);
    const limit = options.limit ?? Infinity;
    const chosen: DeadLetter[] = [];
    for (const letter of letters.values()) {
      if (chosen.length >= limit) break;
      if (letter.envelope === undefined || (ids !== undefined && !ids.has(letter.id))) continue;
      chosen.push(letter);
    }
    if (options.dryRun !== true) {
      const now = Date.now();
      for (const letter of chosen) {
        letters.delete(letter.id);
        const envelope: Envelope = startedOver(letter.envelope!, letter.queue);
        delete envelope.notBefore;
        if (options.delayMs !== undefined && options.delayMs > 0) envelope.notBefore = now + options.delayMs;
        this.route(envelope, now);
      }
    }
    return chosen.map(copyDeadLetter);
  }

  /** Deletes dead letters (all, or only `ids`); returns how many. */
  async purgeDeadLetters(queue: string, options: { ids?: readonly string[] } = {}): Promise<number> {
    this.assertOpen();
    const letters = this.deadLetters.get(queue);
    if (letters === undefined) return 0;
    if (options.ids === undefined) {
      const count = letters.size;
      letters.clear();
      return count;
    }
    let count = 0;
    for (const id of new Set(options.ids)) if (letters.delete(id)) count++;
    return count;
  }

  /** Ready and delayed messages (for a broadcast address: summed over its subscribers). */
  async pending(queue: string): Promise<number> {
    return this.sum(queue, (source) => source.pendingCount) + (this.gates.get(queue)?.waitingCount ?? 0);
  }

  /** Leased messages (for a broadcast address: summed over its subscribers). */
  async inflight(queue: string): Promise<number> {
    return this.sum(queue, (source) => source.inflightCount);
  }

  /** Deletes the waiting messages, expired leases included; leased ones stay. */
  async purge(queue: string): Promise<number> {
    const gate = this.gates.get(queue);
    if (gate === undefined) return this.sum(queue, (source) => source.purge());
    // The waiting ones first: a purged message that held a slot must not let a waiting one in.
    const waiting = gate.purge();
    return waiting + this.sum(queue, (source) => source.purge((message) => gate.release(message.envelope)));
  }

  /** Plain queues published to or consumed from, then known broadcast addresses, each sorted. */
  async listQueues(): Promise<string[]> {
    this.assertOpen();
    const plain = [...this.queues.keys()].sort();
    const broadcasts = [...this.channels.keys()].sort().map(broadcastAddress);
    return [...plain, ...broadcasts];
  }

  /** Drops every message; waiting fetches return [], later calls throw ClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const consumer of this.consumers) consumer.shutdown();
    this.consumers.clear();
    for (const queue of this.queuesByReceiptPrefix.values()) queue.drop();
    this.queues.clear();
    this.queuesByReceiptPrefix.clear();
    this.channels.clear();
    this.deadLetters.clear();
    this.gates.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory broker');
  }

  private route(envelope: Envelope, now: number): void {
    const channel = broadcastChannel(envelope.queue);
    if (channel === undefined) {
      const queue = this.queueNamed(envelope.queue);
      const message = this.store(envelope);
      // An unkeyed message (nearly all) goes straight in: no gate, no closure per message.
      if (concurrencyKeyOf(message.envelope) === undefined) queue.enqueue(message, now);
      else this.gateOf(envelope.queue).offer(message.envelope, () => queue.enqueue(message, Date.now()));
      return;
    }
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined) this.channels.set(channel, new Map());
    else for (const subscription of subscribers.values()) subscription.queue.enqueue(this.store(envelope), now);
  }

  private store(envelope: Envelope): StoredMessage {
    return {
      envelope: copyEnvelope(envelope),
      seq: ++this.seq,
      priority: clampPriority(envelope.priority),
      notBefore: envelope.notBefore ?? 0,
      redeliveries: 0,
      receipt: '',
      leaseExpiresAt: 0,
    };
  }

  private gateOf(queue: string): ConcurrencyGate {
    let gate = this.gates.get(queue);
    if (gate === undefined) this.gates.set(queue, (gate = new ConcurrencyGate()));
    return gate;
  }

  private queueNamed(name: string): MessageQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = this.createQueue(name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  private createQueue(address: string): MessageQueue {
    const prefix = `${++this.queueCount}:`;
    const queue = new MessageQueue(address, prefix);
    this.queuesByReceiptPrefix.set(prefix, queue);
    return queue;
  }

  private queueOfReceipt(receipt: string): MessageQueue | undefined {
    return this.queuesByReceiptPrefix.get(receipt.slice(0, receipt.indexOf(':') + 1));
  }

  private subscribe(channel: string, consumerId: string): MessageQueue {
    let subscribers = this.channels.get(channel);
    if (subscribers === undefined) {
      subscribers = new Map();
      this.channels.set(channel, subscribers);
    }
    let subscription = subscribers.get(consumerId);
    if (subscription === undefined) {
      subscription = { queue: this.createQueue(broadcastAddress(channel)), holders: 0 };
      subscribers.set(consumerId, subscription);
    }
    subscription.holders++;
    return subscription.queue;
  }

  /** The last consumer of a subscriber leaving ends the subscription, so copies stop piling up. */
  private unsubscribe(channel: string, consumerId: string): void {
    const subscribers = this.channels.get(channel);
    const subscription = subscribers?.get(consumerId);
    if (subscribers === undefined || subscription === undefined || --subscription.holders > 0) return;
    subscribers.delete(consumerId);
    this.queuesByReceiptPrefix.delete(subscription.queue.receiptPrefix);
    subscription.queue.drop();
  }

  private sum(address: string, count: (source: MessageQueue) => number): number {
    this.assertOpen();
    const now = Date.now();
    let total = 0;
    const channel = broadcastChannel(address);
    const sources =
      channel === undefined
        ? [this.queues.get(address)]
        : [...(this.channels.get(channel)?.values() ?? [])].map((subscription) => subscription.queue);
    for (const source of sources) {
      if (source === undefined) continue;
      source.settle(now);
      total += count(source);
    }
    return total;
  }

  private keepDeadLetter(letter: DeadLetter): void {
    let letters = this.deadLetters.get(letter.queue);
    if (letters === undefined) {
      letters = new Map();
      this.deadLetters.set(letter.queue, letters);
    }
    // Dead-lettered again under the same id: the newer one takes the newest place.
    letters.delete(letter.id);
    letters.set(letter.id, letter);
  }
}
