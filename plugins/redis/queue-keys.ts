import { isBroadcastAddress } from '../../sdk/envelope.js';
import { tagPart } from './key-part.js';

/** Band tags of a queue's streams, highest priority first: one stream per priority 9…0. */
export const QUEUE_BANDS: readonly string[] = ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'];
/** The one band tag of a broadcast channel's stream. */
export const BROADCAST_BAND = 'b';
/** The consumer group every worker of a queue reads with. */
export const QUEUE_GROUP = 'stem:workers';

/**
 * The Redis keys of one queue or broadcast channel. Every key starts with the hash tag
 * `{<prefix>:<address>}`, so all of them live in one Redis Cluster slot and the multi-key
 * scripts stay legal on a cluster. The prefix is the encoded namespace (key-part.ts) and the
 * address is encoded by {@link tagPart}, so no two (namespace, address) pairs share a key.
 */
export class QueueKeys {
  /** `{prefix:address}`: the start (and cluster hash tag) of every key here. */
  readonly tag: string;
  /** True for a `broadcast://` address. */
  readonly broadcast: boolean;
  /** The streams, highest priority first (one for a broadcast channel). */
  readonly streams: readonly string[];
  /** The band tag of each stream, same order. */
  readonly bands: readonly string[];
  /** Delayed tasks: member `<band>:<visibility ms>:<envelope json>`, score notBefore. */
  readonly delayed: string;
  /** Dead letters: id → dead letter json. */
  readonly deadLetters: string;
  /** Dead letter ids ordered by deadAt. */
  readonly deadLetterIndex: string;
  /** Per-key concurrency: key → slots held (tasks of the key in the queue or leased). */
  readonly concurrencyHeld: string;
  /** Per-key concurrency: key → the limit its tasks carry (the latest published). */
  readonly concurrencyLimits: string;
  /** Per-key concurrency: key → run-time limit (`stem worker concurrency-limit`). */
  readonly concurrencyOverrides: string;
  private readonly leasePrefix: string;

  /** `prefix` is the connection's key prefix (already encoded); `address` is the queue as named. */
  constructor(
    prefix: string,
    readonly address: string,
  ) {
    this.tag = `{${prefix}:${tagPart(address)}}`;
    this.broadcast = isBroadcastAddress(address);
    this.bands = this.broadcast ? [BROADCAST_BAND] : QUEUE_BANDS;
    this.streams = this.bands.map((band) => `${this.tag}:s:${band}`);
    this.delayed = `${this.tag}:delayed`;
    this.deadLetters = `${this.tag}:dead`;
    this.deadLetterIndex = `${this.tag}:dead:index`;
    this.concurrencyHeld = `${this.tag}:cc:held`;
    this.concurrencyLimits = `${this.tag}:cc:limit`;
    this.concurrencyOverrides = `${this.tag}:cc:override`;
    this.leasePrefix = `${this.tag}:leases`;
  }

  /** The stream of a band tag. */
  stream(band: string): string {
    return this.broadcast ? this.streams[0]! : `${this.tag}:s:${band}`;
  }

  /** The band tag a priority goes to (clamped into 0–9). */
  bandOf(priority: number): string {
    if (this.broadcast) return BROADCAST_BAND;
    const clamped = Number.isFinite(priority) ? Math.min(9, Math.max(0, Math.round(priority))) : 0;
    return String(clamped);
  }

  /** The list of a concurrency key's tasks waiting for a slot, oldest first (the key is used as it is: it comes last). */
  concurrencyWaiting(key: string): string {
    return `${this.tag}:cc:w:${key}`;
  }

  /** The consumer group: one per queue, one per subscriber of a broadcast channel. */
  group(consumerId: string): string {
    return this.broadcast ? consumerId : QUEUE_GROUP;
  }

  /** The lease zset: one per queue, one per subscriber of a broadcast channel. */
  leases(consumerId: string): string {
    return this.broadcast ? `${this.leasePrefix}:${consumerId}` : this.leasePrefix;
  }
}
