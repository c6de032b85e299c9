import type { Delivery } from '../contracts/broker.js';
import type { Envelope } from '../envelope.js';
import { MinHeap } from './min-heap.js';

/** Lease length for an envelope that carries no usable visibility timeout. */
const DEFAULT_VISIBILITY_TIMEOUT_MS = 30_000;

/** A message as the memory broker keeps it between publish and ack. */
export interface StoredMessage {
  /** The envelope as published (or as replaced by a nack). */
  envelope: Envelope;
  /** Broker-wide publish order: oldest first within a priority, and across a consumer's queues. */
  seq: number;
  /** The envelope's priority clamped to 0–9. */
  priority: number;
  /** Epoch ms before which it is not deliverable (0: at once). */
  notBefore: number;
  /** Deliveries before the next one. */
  redeliveries: number;
  /** The receipt of the current lease, '' when not leased. */
  receipt: string;
  /** Epoch ms when the current lease runs out. */
  leaseExpiresAt: number;
}

/** True when `a` is delivered before `b`: higher priority, then older. */
function readyFirst(a: StoredMessage, b: StoredMessage): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}

function dueFirst(a: StoredMessage, b: StoredMessage): boolean {
  return a.notBefore !== b.notBefore ? a.notBefore < b.notBefore : a.seq < b.seq;
}

/** Copies an envelope down to its headers and meta, so no holder can change another's copy. */
export function copyEnvelope(envelope: Envelope): Envelope {
  return { ...envelope, headers: { ...envelope.headers }, meta: { ...envelope.meta } };
}

/**
 * One queue of the memory broker (a plain queue, or one subscriber's copy of a broadcast channel):
 * ready messages by priority, delayed ones by due time, and leased ones by receipt. Time moves
 * lazily: `settle(now)` promotes what became due and takes back expired leases, so no message
 * ever owns a timer.
 */
export class MessageQueue {
  private readonly ready = new MinHeap<StoredMessage>(readyFirst);
  private readonly delayed = new MinHeap<StoredMessage>(dueFirst);
  private readonly leased = new Map<string, StoredMessage>();
  /** Never later than the earliest lease expiry, so leases are scanned only when one may have run out. */
  private leaseHorizon = Infinity;
  private leaseCount = 0;
  private readonly waiters = new Set<() => void>();

  /**
   * @param address the queue name or `broadcast://channel` that deliveries report
   * @param receiptPrefix makes this queue's receipts unique within the broker and finds it back from one
   */
  constructor(
    readonly address: string,
    readonly receiptPrefix: string,
  ) {}

  /** Messages waiting (ready and delayed); call `settle` first. */
  get pendingCount(): number {
    return this.ready.size + this.delayed.size;
  }

  /** Messages leased right now; call `settle` first. */
  get inflightCount(): number {
    return this.leased.size;
  }

  /** Adds a message (ready, or delayed until its notBefore) and wakes the waiting consumers. */
  enqueue(message: StoredMessage, now: number): void {
    if (message.notBefore > now) this.delayed.push(message);
    else this.ready.push(message);
    this.wake();
  }

  /** Promotes delayed messages that are due and takes back leases that ran out. */
  settle(now: number): void {
    for (let next = this.delayed.peek(); next !== undefined && next.notBefore <= now; next = this.delayed.peek()) {
      this.ready.push(this.delayed.pop()!);
    }
    if (now >= this.leaseHorizon) this.reclaimExpired(now);
  }

  /** The message `lease` would hand out next. */
  peekReady(): StoredMessage | undefined {
    return this.ready.peek();
  }

  /** Leases the first ready message until its visibility timeout runs out. */
  lease(now: number): Delivery | undefined {
    const message = this.ready.pop();
    if (message === undefined) return undefined;
    const leaseMs = message.envelope.visibilityTimeoutMs > 0 ? message.envelope.visibilityTimeoutMs : DEFAULT_VISIBILITY_TIMEOUT_MS;
    message.receipt = this.receiptPrefix + ++this.leaseCount;
    message.leaseExpiresAt = now + leaseMs;
    this.leased.set(message.receipt, message);
    if (message.leaseExpiresAt < this.leaseHorizon) this.leaseHorizon = message.leaseExpiresAt;
    return {
      envelope: copyEnvelope(message.envelope),
      queue: this.address,
      receipt: message.receipt,
      leaseExpiresAt: message.leaseExpiresAt,
      redeliveries: message.redeliveries,
    };
  }

  /** Ends the lease of `receipt` and hands its message over; undefined when the receipt is stale. */
  release(receipt: string): StoredMessage | undefined {
    const message = this.leased.get(receipt);
    if (message === undefined) return undefined;
    this.leased.delete(receipt);
    message.receipt = '';
    return message;
  }

  /** Moves the lease of `receipt` to `expiresAt`; false when the receipt is stale. */
  extend(receipt: string, expiresAt: number): boolean {
    const message = this.leased.get(receipt);
    if (message === undefined) return false;
    message.leaseExpiresAt = expiresAt;
    if (expiresAt < this.leaseHorizon) this.leaseHorizon = expiresAt;
    return true;
  }

  /** Epoch ms of the next change that no publish announces: a delayed message due or a lease running out. */
  nextChangeAt(): number {
    return Math.min(this.delayed.peek()?.notBefore ?? Infinity, this.leaseHorizon);
  }

  /** Takes out the ready message published longest ago, whatever its priority (a bounded queue's drop-oldest); call `settle` first. */
  takeOldestReady(): StoredMessage | undefined {
    return this.ready.takeFirstBy((a, b) => a.seq < b.seq);
  }

  /** Deletes the waiting messages (not the leased ones), telling `onDrop` of each; returns how many. */
  purge(onDrop?: (message: StoredMessage) => void): number {
    if (onDrop === undefined) return this.ready.clear() + this.delayed.clear();
    let dropped = 0;
    for (const heap of [this.ready, this.delayed]) {
      for (let message = heap.pop(); message !== undefined; message = heap.pop()) {
        onDrop(message);
        dropped++;
      }
    }
    return dropped;
  }

  /** Forgets everything, leased messages included (the queue is going away). */
  drop(): void {
    this.purge();
    this.leased.clear();
    this.leaseHorizon = Infinity;
    this.wake();
  }

  /** Calls `waiter` once at the next enqueue or wake. */
  addWaiter(waiter: () => void): void {
    this.waiters.add(waiter);
  }

  /** Forgets a waiter that was woken by something else. */
  removeWaiter(waiter: () => void): void {
    this.waiters.delete(waiter);
  }

  /** Wakes every waiting consumer so that it looks again. */
  wake(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }

  private reclaimExpired(now: number): void {
    let horizon = Infinity;
    for (const [receipt, message] of this.leased) {
      if (message.leaseExpiresAt <= now) {
        this.leased.delete(receipt);
        message.receipt = '';
        message.redeliveries++;
        this.ready.push(message);
      } else if (message.leaseExpiresAt < horizon) {
        horizon = message.leaseExpiresAt;
      }
    }
    this.leaseHorizon = horizon;
  }
}
