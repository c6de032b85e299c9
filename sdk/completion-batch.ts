import type { Broker, Delivery } from './contracts/broker.js';
import type { ResultBackend, TaskStatus } from './contracts/result-backend.js';

const FLUSH_ATTEMPTS = 5;
const RETRY_BASE_MS = 200;

/**
 * Collects the state writes and acks of one worker and flushes them together once per event-loop
 * turn: one backend write and one ack call for every task that finished since the last flush,
 * never a round trip per task. State writes of the same task are coalesced (the latest wins), and
 * the states are written before the acks: a crash in between only means a redelivery.
 */
export class CompletionBatch {
  private statuses = new Map<string, TaskStatus>();
  private statusTtl = new Map<string, number>();
  private acks: Delivery[] = [];
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly broker: Broker,
    private readonly backend: ResultBackend,
    private readonly defaultTtlMs: number,
    private readonly warn: (message: string) => void,
  ) {}

  /** Queues a state write. */
  record(status: TaskStatus, ttlMs: number = this.defaultTtlMs): void {
    this.statuses.set(status.id, status);
    if (ttlMs !== this.defaultTtlMs) this.statusTtl.set(status.id, ttlMs);
    else if (this.statusTtl.size > 0) this.statusTtl.delete(status.id);
    this.schedule();
  }

  /** Queues an ack (after the state writes of the same flush). */
  ack(delivery: Delivery): void {
    this.acks.push(delivery);
    this.schedule();
  }

  /** Flushes now and waits until everything queued so far is written. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async write(): Promise<void> {
    if (this.statuses.size === 0 && this.acks.length === 0) return;
    const statuses = this.statuses;
    const ttls = this.statusTtl;
    const acks = this.acks;
    this.statuses = new Map();
    this.statusTtl = new Map();
    this.acks = [];
    if (statuses.size > 0 && acks.length > 0 && ttls.size === 0 && this.broker.ackWithStates) {
      // One round trip for both, where the broker and the backend share a server.
      const ackWithStates = this.broker.ackWithStates.bind(this.broker);
      let settled = false;
      const done = await this.retrying('write task states and acknowledge', async () => {
        settled = await ackWithStates(this.backend, [...statuses.values()], this.defaultTtlMs, acks);
      });
      if (!done || settled) return;
    }
    if (statuses.size > 0) {
      const written = await this.retrying('write task states', () => this.writeStatuses(statuses, ttls));
      // Without their states written, acking would lose results: leave them to be redelivered.
      if (!written) return;
    }
    if (acks.length > 0) await this.retrying('acknowledge deliveries', () => this.broker.ack(acks));
  }

  private async writeStatuses(statuses: Map<string, TaskStatus>, ttls: Map<string, number>): Promise<void> {
    if (ttls.size === 0) {
      await this.backend.set([...statuses.values()], { ttlMs: this.defaultTtlMs });
      return;
    }
    const byTtl = new Map<number, TaskStatus[]>();
    for (const status of statuses.values()) {
      const ttl = ttls.get(status.id) ?? this.defaultTtlMs;
      const group = byTtl.get(ttl) ?? [];
      group.push(status);
      byTtl.set(ttl, group);
    }
    await Promise.all([...byTtl].map(([ttlMs, group]) => this.backend.set(group, { ttlMs })));
  }

  private async retrying(what: string, action: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await action();
        return true;
      } catch (error) {
        if (attempt >= FLUSH_ATTEMPTS) {
          this.warn(`could not ${what} after ${attempt} attempts (${(error as Error).message}); the tasks will be redelivered when their leases run out`);
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_BASE_MS * 2 ** (attempt - 1)));
      }
    }
  }
}
