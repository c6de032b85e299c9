import type { Broker, Delivery } from './contracts/broker.js';

const MIN_INTERVAL_MS = 20;

/**
 * Renews the leases of every delivery a worker holds with one timer and one broker call per
 * lease length, so a long task is never redelivered while its worker is alive. A lease is renewed
 * when a third of it has passed.
 */
export class LeaseKeeper {
  private readonly held = new Set<Delivery>();
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  private stopped = false;

  constructor(
    private readonly broker: Broker,
    private readonly warn: (message: string) => void,
  ) {}

  /** Starts renewing `delivery`'s lease. */
  track(delivery: Delivery): void {
    this.held.add(delivery);
    this.scheduleBy(Date.now() + Math.max(MIN_INTERVAL_MS, delivery.envelope.visibilityTimeoutMs / 3));
  }

  /** Stops renewing `delivery`'s lease (it was acked, nacked or dead-lettered). */
  release(delivery: Delivery): void {
    this.held.delete(delivery);
  }

  /** Renews the given deliveries' leases right now. */
  async renew(deliveries: readonly Delivery[]): Promise<void> {
    const byLease = new Map<number, Delivery[]>();
    for (const delivery of deliveries) {
      const leaseMs = delivery.envelope.visibilityTimeoutMs;
      const group = byLease.get(leaseMs);
      if (group) group.push(delivery);
      else byLease.set(leaseMs, [delivery]);
    }
    await Promise.all(
      [...byLease].map(async ([leaseMs, group]) => {
        await this.broker.extendLeases(group, leaseMs);
        const expiresAt = Date.now() + leaseMs;
        for (const delivery of group) delivery.leaseExpiresAt = expiresAt;
      }),
    );
  }

  /** Stops the timer. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.held.clear();
  }

  private scheduleBy(at: number): void {
    if (this.stopped || at >= this.dueAt) return;
    clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.dueAt = Infinity;
    if (this.held.size === 0) return;
    const now = Date.now();
    const due: Delivery[] = [];
    let next = Infinity;
    for (const delivery of this.held) {
      const third = delivery.envelope.visibilityTimeoutMs / 3;
      // Renew once two thirds of the lease remain or less; otherwise look again later.
      if (delivery.leaseExpiresAt - now <= 2 * third + MIN_INTERVAL_MS) due.push(delivery);
      next = Math.min(next, now + Math.max(MIN_INTERVAL_MS, third));
    }
    try {
      if (due.length > 0) await this.renew(due);
    } catch (error) {
      this.warn(`lease renewal failed (${(error as Error).message}); retrying`);
    }
    if (this.held.size > 0) this.scheduleBy(next);
  }
}
