import type { Broker } from './contracts/broker.js';
import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';
import type { AutoscaleOptions } from './worker-options.js';

/** A scaling decision, as shown in worker stats and the `worker-scaled` signal. */
export interface ScaleDecision {
  /** Epoch ms. */
  at: number;
  from: number;
  to: number;
  reason: string;
}

/** What the autoscaler needs of its worker. */
export interface ScalableWorker {
  readonly queues: readonly string[];
  readonly concurrency: number;
  setConcurrency(concurrency: number): void;
  runningCount(): number;
}

/**
 * Scales a worker's concurrency between min and max: doubles it (up to max) when the backlog per
 * slot passes a threshold while every slot is busy, and halves it (down to min) after an idle
 * period with no backlog and at most half the slots busy. Cooldowns keep it from flapping.
 */
export class Autoscaler {
  private readonly min: number;
  private readonly max: number;
  private readonly backlogPerSlot: number;
  private readonly idleAfterMs: number;
  private readonly intervalMs: number;
  private readonly upCooldownMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastUpAt = 0;
  private quietSince: number | undefined;
  private checking = false;
  /** The latest decisions, newest last (at most 20). */
  readonly decisions: ScaleDecision[] = [];

  constructor(
    options: AutoscaleOptions,
    private readonly broker: Broker,
    private readonly worker: ScalableWorker,
    private readonly onDecision: (decision: ScaleDecision) => void,
  ) {
    if (!Number.isInteger(options.min) || !Number.isInteger(options.max) || options.min < 1 || options.max < options.min) {
      throw new ConfigError(`autoscale: min ${options.min} and max ${options.max} must be whole numbers with 1 <= min <= max`);
    }
    this.min = options.min;
    this.max = options.max;
    this.backlogPerSlot = options.backlogPerSlot ?? 1;
    this.idleAfterMs = parseDuration(options.idleAfter ?? '30s', 'autoscale.idleAfter');
    this.intervalMs = parseDuration(options.interval ?? '1s', 'autoscale.interval');
    this.upCooldownMs = parseDuration(options.upCooldown ?? '2s', 'autoscale.upCooldown');
  }

  /** The starting concurrency. */
  get initialConcurrency(): number {
    return this.min;
  }

  /** The bounds, for stats. */
  state(): { min: number; max: number; last?: ScaleDecision } {
    const last = this.decisions[this.decisions.length - 1];
    return last ? { min: this.min, max: this.max, last } : { min: this.min, max: this.max };
  }

  /** Starts checking the backlog. */
  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops checking. */
  stop(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      let backlog = 0;
      for (const queue of this.worker.queues) backlog += await this.broker.pending(queue);
      this.decide(backlog, Date.now());
    } catch {
      // The broker is unreachable: keep the current concurrency and look again next time.
    } finally {
      this.checking = false;
    }
  }

  private decide(backlog: number, now: number): void {
    const concurrency = this.worker.concurrency;
    const running = this.worker.runningCount();
    if (
      backlog > concurrency * this.backlogPerSlot &&
      running >= concurrency &&
      concurrency < this.max &&
      now - this.lastUpAt >= this.upCooldownMs
    ) {
      this.lastUpAt = now;
      this.quietSince = undefined;
      this.apply({
        at: now,
        from: concurrency,
        to: Math.min(this.max, concurrency * 2),
        reason: `backlog ${backlog} over ${concurrency} busy slots`,
      });
      return;
    }
    const quiet = backlog === 0 && running <= concurrency / 2;
    if (!quiet) {
      this.quietSince = undefined;
      return;
    }
    this.quietSince ??= now;
    if (concurrency > this.min && now - this.quietSince >= this.idleAfterMs) {
      this.quietSince = now;
      this.apply({
        at: now,
        from: concurrency,
        to: Math.max(this.min, Math.floor(concurrency / 2), running),
        reason: `idle for ${this.idleAfterMs}ms`,
      });
    }
  }

  private apply(decision: ScaleDecision): void {
    if (decision.to === decision.from) return;
    this.worker.setConcurrency(decision.to);
    this.decisions.push(decision);
    if (this.decisions.length > 20) this.decisions.shift();
    this.onDecision(decision);
  }
}
