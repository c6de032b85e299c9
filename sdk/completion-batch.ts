import type { Broker, Delivery } from './contracts/broker.js';
import type { ResultBackend, TaskStatus } from './contracts/result-backend.js';

const FLUSH_ATTEMPTS = 5;
const RETRY_BASE_MS = 200;

/** One attempt of a split write: whether anything landed, the groups to try again, the last error. */
interface Round {
  landed: boolean;
  failed: Array<{ ttlMs: number; group: TaskStatus[]; error?: Error }>;
  lastError: Error | undefined;
}

/** The states by the TTL they are written with. */
function groupByTtl(statuses: Map<string, TaskStatus>, ttls: Map<string, number>, defaultTtlMs: number): Map<number, TaskStatus[]> {
  const byTtl = new Map<number, TaskStatus[]>();
  for (const status of statuses.values()) {
    const ttl = ttls.get(status.id) ?? defaultTtlMs;
    const group = byTtl.get(ttl);
    if (group === undefined) byTtl.set(ttl, [status]);
    else group.push(status);
  }
  return byTtl;
}

/** Why JSON cannot encode `value` (the message of JSON.stringify's error), or undefined when it can. */
export function encodingProblem(value: unknown): string | undefined {
  // Strings, numbers, booleans, null and undefined always encode: the hot path stops here.
  if ((typeof value !== 'object' && typeof value !== 'bigint') || value === null) return undefined;
  try {
    JSON.stringify(value);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

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
    /**
     * Told of each state the backend refused alone (its batch split down to it) while it took
     * others, with the delivery whose ack was withheld for it when there was one.
     */
    private readonly refused: (status: TaskStatus, error: Error, delivery: Delivery | undefined) => void = () => undefined,
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
    let acks = this.acks;
    this.statuses = new Map();
    this.statusTtl = new Map();
    this.acks = [];
    if (statuses.size > 0 && acks.length > 0 && ttls.size === 0 && this.broker.ackWithStates) {
      // One round trip for both, where the broker and the backend share a server. When it fails,
      // the states go alone below (split down to any the backend refuses), then the acks.
      try {
        if (await this.broker.ackWithStates(this.backend, [...statuses.values()], this.defaultTtlMs, acks)) return;
      } catch {
        // fall through to the separate writes
      }
    }
    if (statuses.size > 0) {
      try {
        await this.setAll(statuses, ttls);
      } catch (error) {
        const refused = await this.writeStatuses(statuses, ttls, error instanceof Error ? error : new Error(String(error)));
        // Without their states written, acking would lose results: leave them to be redelivered.
        if (refused === undefined) return;
        if (refused.size > 0) acks = this.withhold(acks, statuses, refused);
      }
    }
    if (acks.length > 0) await this.retrying('acknowledge deliveries', () => this.broker.ack(acks));
  }

  /** The usual case: every state in one write (one per TTL). */
  private async setAll(statuses: Map<string, TaskStatus>, ttls: Map<string, number>): Promise<void> {
    if (ttls.size === 0) {
      await this.backend.set([...statuses.values()], { ttlMs: this.defaultTtlMs });
      return;
    }
    await Promise.all([...groupByTtl(statuses, ttls, this.defaultTtlMs)].map(([ttlMs, group]) => this.backend.set(group, { ttlMs })));
  }

  /** Takes the acks of refused states out, and hands each refused state (with its delivery) to the worker. */
  private withhold(acks: Delivery[], statuses: Map<string, TaskStatus>, refused: Map<string, Error>): Delivery[] {
    const kept: Delivery[] = [];
    const withheld = new Map<string, Delivery>();
    for (const delivery of acks) {
      if (refused.has(delivery.envelope.id)) withheld.set(delivery.envelope.id, delivery);
      else kept.push(delivery);
    }
    for (const [id, error] of refused) this.refused(statuses.get(id)!, error, withheld.get(id));
    return kept;
  }

  /**
   * Writes the states, grouped by TTL. A write that fails is split in halves, each written on
   * its own, so that one state the backend refuses (or cannot encode) never holds back the others.
   * While nothing has landed yet (maybe the backend is down) a group whose halves both fail waits
   * for the next attempt instead of being split further, so an outage costs a few calls per
   * attempt, not one per state. Returns the states refused alone (with their errors) once some
   * write landed, or undefined when nothing could be written at all after every attempt.
   */
  private async writeStatuses(
    statuses: Map<string, TaskStatus>,
    ttls: Map<string, number>,
    firstError: Error,
  ): Promise<Map<string, Error> | undefined> {
    let pending = [...groupByTtl(statuses, ttls, this.defaultTtlMs)].map(([ttlMs, group]) => ({ ttlMs, group }));
    const refused = new Map<string, Error>();
    const round: Round = { landed: false, failed: [], lastError: firstError };
    // With one group, the caller's write of it just failed: start with its halves.
    let failedJustNow = pending.length === 1;
    for (let attempt = 1; ; attempt++) {
      round.failed = [];
      const skipFirst = failedJustNow;
      failedJustNow = false;
      await Promise.all(pending.map(({ ttlMs, group }) => this.split(group, ttlMs, round, refused, false, skipFirst)));
      if (round.failed.length > 0 && attempt >= FLUSH_ATTEMPTS && round.landed && round.failed.some(({ group }) => group.length > 1)) {
        // The backend came back during the last attempt: split what is left down to single states.
        const left = round.failed;
        round.failed = [];
        await Promise.all(left.map(({ ttlMs, group }) => this.split(group, ttlMs, round, refused, true)));
      }
      if (round.failed.length === 0) return refused;
      if (attempt >= FLUSH_ATTEMPTS) {
        if (!round.landed) {
          this.warn(
            `could not write task states after ${attempt} attempts (${round.lastError?.message}); the tasks will be redelivered ` +
              `when their leases run out`,
          );
          return undefined;
        }
        // The backend took other states meanwhile, and these alone it refused every time.
        for (const { group, error } of round.failed)
          for (const status of group) refused.set(status.id, error ?? round.lastError ?? new Error('the write failed'));
        return refused;
      }
      pending = round.failed;
      await new Promise((resolve) => setTimeout(resolve, RETRY_BASE_MS * 2 ** (attempt - 1)));
    }
  }

  /**
   * Writes `group`, or its halves when that fails (see writeStatuses); `full` splits down to single
   * states whatever happens; `failedJustNow` skips the first write (the caller's probe just failed).
   */
  private async split(
    group: TaskStatus[],
    ttlMs: number,
    round: Round,
    refused: Map<string, Error>,
    full: boolean,
    failedJustNow = false,
  ): Promise<void> {
    if (!failedJustNow && (await this.trySet(group, ttlMs, round))) return;
    if (group.length === 1) {
      const status = group[0]!;
      // A state JSON cannot encode fails the same way every time: no point in retrying it.
      const problem = encodingProblem(status);
      if (problem !== undefined) refused.set(status.id, new TypeError(problem));
      else round.failed.push({ ttlMs, group, error: round.lastError });
      return;
    }
    const middle = group.length >>> 1;
    const halves = [group.slice(0, middle), group.slice(middle)];
    if (!round.landed && !full) {
      // Probe: write both halves; only when one lands is the other worth splitting further now.
      const results = await Promise.all(halves.map((half) => this.trySet(half, ttlMs, round)));
      if (results.every((ok) => !ok) && !round.landed) {
        round.failed.push({ ttlMs, group: halves[0]! }, { ttlMs, group: halves[1]! });
        return;
      }
      await Promise.all(halves.filter((_, i) => !results[i]).map((half) => this.split(half, ttlMs, round, refused, full, true)));
      return;
    }
    await Promise.all(halves.map((half) => this.split(half, ttlMs, round, refused, full)));
  }

  private async trySet(group: TaskStatus[], ttlMs: number, round: Round): Promise<boolean> {
    try {
      await this.backend.set(group, { ttlMs });
      round.landed = true;
      return true;
    } catch (error) {
      round.lastError = error instanceof Error ? error : new Error(String(error));
      return false;
    }
  }

  private async retrying(what: string, action: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await action();
        return true;
      } catch (error) {
        if (attempt >= FLUSH_ATTEMPTS) {
          this.warn(
            `could not ${what} after ${attempt} attempts (${(error as Error).message}); the tasks will be redelivered when their ` +
              `leases run out`,
          );
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_BASE_MS * 2 ** (attempt - 1)));
      }
    }
  }
}
