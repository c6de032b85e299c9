import { StemError } from '../../sdk/errors.js';

/**
 * What a Delivery's `receipt` carries: `<band>:<stream entry id>/<delivery count>` and, for a
 * broadcast, `@<consumerId>` (the subscriber's group). The delivery count tells a stale receipt
 * (its lease ran out and the entry was delivered again) from the current one.
 */
export class LeaseReceipt {
  private constructor(
    /** The band tag of the stream the entry is in. */
    readonly band: string,
    /** The stream entry id. */
    readonly entryId: string,
    /** Which delivery of the entry this is (1 for the first). */
    readonly deliveryCount: number,
    /** The broadcast subscriber, or '' for a queue. */
    readonly consumerId: string,
  ) {}

  /** The member of the lease zset: `<band>:<entry id>`. */
  get member(): string {
    return `${this.band}:${this.entryId}`;
  }

  /** The receipt string of a delivery. */
  static format(band: string, entryId: string, deliveryCount: number, consumerId: string): string {
    const base = `${band}:${entryId}/${deliveryCount}`;
    return consumerId === '' ? base : `${base}@${consumerId}`;
  }

  /** Reads a receipt back; throws when it was not made by this broker. */
  static parse(receipt: string): LeaseReceipt {
    const at = receipt.indexOf('@');
    const base = at === -1 ? receipt : receipt.slice(0, at);
    const colon = base.indexOf(':');
    const slash = base.indexOf('/', colon);
    if (colon <= 0 || slash === -1) {
      throw new StemError('invalid-receipt', `"${receipt}" is not a Redis broker receipt; pass deliveries returned by this broker's fetch`);
    }
    return new LeaseReceipt(
      base.slice(0, colon),
      base.slice(colon + 1, slash),
      Number(base.slice(slash + 1)),
      at === -1 ? '' : receipt.slice(at + 1),
    );
  }
}
