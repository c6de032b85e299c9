import { hostname } from 'node:os';
import { firingFor, nextRunAfterFiring, scheduleRuleOf, validateScheduleDefinitions, type ScheduleDefinition } from './schedule-rules.js';
import type { ScheduleEntry } from '../../sdk/contracts/schedule-store.js';
import { parseDuration, type Duration } from '../../sdk/duration.js';
import { ConfigError, ExitCode, StaleVersionError, StemError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { Firing } from '../../sdk/hooks.js';
import type { Stem } from '../../sdk/kernel.js';
import { ScheduleEditor } from './schedule-editor.js';

/** Options of a Beat (and of the `beat()` plugin). */
export interface BeatOptions {
  /** How often Beat looks for due entries (default 1s); keep it at or below the shortest interval. */
  tick?: Duration;
  /** The longest a firing's lock is held, should its Beat die while firing (default 30s). */
  lockTtl?: Duration;
  /** At most this many due entries are fired per tick (default 100). */
  batchSize?: number;
  /** The lock owner name (default host-pid-random). */
  owner?: string;
  /** Definitions applied (added or updated, never pruned) before the first tick. */
  schedules?: readonly ScheduleDefinition[];
  /** Called for each due entry handled. */
  onFiring?: (report: FiringReport) => void;
  /** Called with what went wrong in a tick (default: a process warning). */
  onError?: (error: unknown, scheduleId?: string) => void;
  /** The clock (tests replace it). */
  now?: () => number;
  /** Random numbers in [0, 1) for jitter (tests replace it). */
  random?: () => number;
}

/** What became of one due entry in a tick. */
export type FiringOutcome = 'enqueued' | 'skipped' | 'taken' | 'failed';

/** One due entry handled by a tick. */
export interface FiringReport {
  /** The schedule entry id. */
  scheduleId: string;
  /** The task name. */
  task: string;
  /** Epoch ms the firing was due. */
  scheduledFor: number;
  /** enqueued; skipped by a schedule hook; taken by another Beat (or changed meanwhile); failed. */
  outcome: FiringOutcome;
  /** The enqueued task's id. */
  taskId?: string;
  /** The jitter delay of the enqueue (ms). */
  delayMs?: number;
  /** The entry's next run after this firing. */
  nextRunAt?: number;
  /** Why it failed. */
  error?: unknown;
}

interface ResolvedBeatOptions {
  tickMs: number;
  lockTtlMs: number;
  batchSize: number;
  owner: string;
}

/** Validates Beat options; throws ConfigError naming the option. */
export function resolveBeatOptions(options: BeatOptions, where = 'beat'): ResolvedBeatOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError(`${where}: options must be an object like { tick: '1s' }`);
  const duration = (value: Duration | undefined, fallback: number, option: string): number => {
    if (value === undefined) return fallback;
    let ms: number;
    try {
      ms = parseDuration(value, `${where}: option "${option}"`);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    if (ms < 10) throw new ConfigError(`${where}: option "${option}" must be at least 10ms (got ${JSON.stringify(value)})`);
    return ms;
  };
  const batchSize = options.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ConfigError(`${where}: option "batchSize" must be a positive integer (got ${JSON.stringify(batchSize)})`);
  if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner === '')) {
    throw new ConfigError(`${where}: option "owner" must be a non-empty string`);
  }
  if (options.schedules !== undefined) {
    if (!Array.isArray(options.schedules)) throw new ConfigError(`${where}: option "schedules" must be a list of schedule entries`);
    validateScheduleDefinitions(options.schedules, `${where}: option "schedules"`);
  }
  return {
    tickMs: duration(options.tick, 1_000, 'tick'),
    lockTtlMs: duration(options.lockTtl, 30_000, 'lockTtl'),
    batchSize,
    owner: options.owner ?? `beat-${hostname()}-${process.pid}-${uuidv7().slice(-6)}`,
  };
}

/** The lock of one firing: every Beat computes the same key for the same entry and slot. */
export function firingLockKey(scheduleId: string, scheduledFor: number): string {
  return `beat:${scheduleId}:${scheduledFor}`;
}

/** How often a record is re-applied on top of edits that keep landing meanwhile. */
const RECORD_ATTEMPTS = 5;

/** A bad request (unknown task, bad arguments) fails the same way on every retry. */
function isPermanent(error: unknown): boolean {
  return error instanceof StemError && error.exitCode === ExitCode.usage;
}

/**
 * The Beat scheduler: each tick it reads the due entries of the schedule store and, for each,
 * takes the firing's lock, runs the firing through the `schedule` hook, enqueues the task under the
 * slot's deterministic id (`firingTaskId`) with `stem-schedule-id` and `stem-scheduled-for` headers,
 * then records the run with a versioned upsert. Any number of Beats may share a store: the lock and
 * the re-read under it let one of them fire each slot, and a Beat that dies mid-firing leaves the
 * slot due, to be fired again as the same task. Slots missed while no Beat ran collapse into one
 * catch-up firing.
 */
export class Beat {
  /** The resolved tick (ms). */
  readonly tickMs: number;
  /** The lock owner name of this Beat. */
  readonly owner: string;
  private readonly settings: ResolvedBeatOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private pendingSchedules: readonly ScheduleDefinition[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<unknown> | undefined;
  private running = false;
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly stem: Stem,
    private readonly options: BeatOptions = {},
  ) {
    this.settings = resolveBeatOptions(options);
    this.tickMs = this.settings.tickMs;
    this.owner = this.settings.owner;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.pendingSchedules = options.schedules;
  }

  /** True between start() and stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /** Starts ticking (the first tick at once); a no-op when running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop(0);
  }

  /** Stops ticking and waits for a tick in progress; a firing is never left half done. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  /**
   * One pass: fires every entry due at `now`. Returns what happened to each.
   */
  async tick(now = this.now()): Promise<FiringReport[]> {
    const store = this.stem.service('scheduleStore');
    if (this.pendingSchedules !== undefined) {
      const editor = new ScheduleEditor(store, { now: this.now });
      await editor.apply(await editor.plan(this.pendingSchedules));
      this.pendingSchedules = undefined;
    }
    const reports: FiringReport[] = [];
    for (const entry of await store.due(now, this.settings.batchSize)) {
      const report = await this.fire(entry, now);
      reports.push(report);
      if (report.outcome === 'failed') this.reportError(report.error, entry.id);
      else this.reported.delete(entry.id);
      this.options.onFiring?.(report);
    }
    return reports;
  }

  /**
   * Fires one due entry, once across every Beat sharing the store.
   *
   * The order makes a crash at any point harmless: lock, read again, enqueue under the slot's
   * deterministic task id, and only then record the run. A Beat that dies before the enqueue has
   * recorded nothing, so the slot is still due when its lock runs out; one that dies between the
   * enqueue and the record leaves the slot due too, and the Beat that fires it again enqueues the
   * same task id (at least once: see docs/beat.md). Recording first would lose the firing instead.
   */
  private async fire(due: ScheduleEntry, now: number): Promise<FiringReport> {
    const scheduledFor = due.nextRunAt!;
    const base = { scheduleId: due.id, task: due.task, scheduledFor };
    const locks = this.stem.service('lockStore');
    const store = this.stem.service('scheduleStore');
    const key = firingLockKey(due.id, scheduledFor);
    try {
      if (!(await locks.acquire(key, this.owner, this.settings.lockTtlMs))) return { ...base, outcome: 'taken' };
    } catch (error) {
      return { ...base, outcome: 'failed', error };
    }
    try {
      // Read again under the lock: another Beat may have fired this slot and released its lock.
      const entry = await store.get(due.id);
      if (entry === null || !entry.enabled || entry.nextRunAt !== scheduledFor) return { ...base, outcome: 'taken' };
      const jitterMs = entry.jitterMs !== undefined && entry.jitterMs > 0 ? Math.floor(this.random() * entry.jitterMs) : 0;
      let firing = firingFor(entry, scheduledFor, jitterMs);
      if (this.stem.hooks.schedule.isUsed()) firing = await this.stem.hooks.schedule.promise(firing);

      const report: FiringReport = { ...base, outcome: firing.skip ? 'skipped' : 'enqueued' };
      if (!firing.skip) {
        try {
          report.taskId = await this.enqueueOnce(firing);
          if (jitterMs > 0) report.delayMs = jitterMs;
        } catch (error) {
          // A passing failure (the broker is away) leaves the slot due, for the next tick to retry;
          // a bad request would fail again, so the slot is recorded as consumed and the error reported.
          if (!isPermanent(error)) return { ...base, outcome: 'failed', error };
          const nextRunAt = await this.record(entry, scheduledFor, now, false);
          return nextRunAt === undefined || nextRunAt === null
            ? { ...base, outcome: 'failed', error }
            : { ...base, outcome: 'failed', error, nextRunAt };
        }
      }
      const nextRunAt = await this.record(entry, scheduledFor, now, !firing.skip);
      // A skip whose slot moved meanwhile was another writer's; an enqueue happened either way.
      if (nextRunAt === null) return firing.skip ? { ...base, outcome: 'taken' } : report;
      if (nextRunAt !== undefined) report.nextRunAt = nextRunAt;
      return report;
    } catch (error) {
      return { ...base, outcome: 'failed', error };
    } finally {
      await locks.release(key, this.owner).catch(() => undefined);
    }
  }

  /**
   * Enqueues a firing; returns its task id. A firing enqueued before whose task a worker has
   * already received (its state is past `queued`) is not published again: that is what a Beat
   * that died between enqueueing and recording leaves behind, and so its task does not run twice.
   */
  private async enqueueOnce(firing: Firing): Promise<string> {
    const id = firing.options.id;
    if (id !== undefined) {
      const status = await this.stem.backend.get(id);
      if (status !== null && status.state !== 'queued' && status.state !== 'pending') return id;
    }
    const handle = await this.stem.enqueue(firing.task, firing.args, firing.options);
    return handle.id;
  }

  /**
   * Records that the slot `scheduledFor` was fired (or consumed without a run): moves nextRunAt on
   * with a versioned write. An edit that landed since the entry was read (a header changed) is kept
   * and the record applied on top of it; an entry whose slot moved meanwhile (another Beat recorded
   * it, or it was re-planned, disabled or removed) is left alone. Returns the new nextRunAt, or null
   * when the slot was no longer this Beat's to record.
   */
  private async record(read: ScheduleEntry, scheduledFor: number, now: number, ran: boolean): Promise<number | undefined | null> {
    const store = this.stem.service('scheduleStore');
    let entry: ScheduleEntry | null = read;
    for (let attempt = 0; attempt < RECORD_ATTEMPTS; attempt++) {
      if (entry === null || !entry.enabled || entry.nextRunAt !== scheduledFor) return null;
      const nextRunAt = nextRunAfterFiring(scheduleRuleOf(entry), scheduledFor, now, entry);
      const recorded: ScheduleEntry = { ...entry };
      if (nextRunAt === undefined) delete recorded.nextRunAt;
      else recorded.nextRunAt = nextRunAt;
      if (ran) {
        recorded.lastRunAt = now;
        recorded.totalRuns = (entry.totalRuns ?? 0) + 1;
      }
      try {
        await store.upsert(recorded);
        return nextRunAt;
      } catch (error) {
        if (!(error instanceof StaleVersionError)) throw error;
      }
      entry = await store.get(read.id);
    }
    return null;
  }

  /** The next tick, aligned to whole ticks of the clock so that every:Ns slots fire promptly. */
  private loop(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.current = this.tick()
        .then(
          () => this.reported.delete(''),
          (error: unknown) => this.reportError(error),
        )
        .finally(() => {
          this.current = undefined;
          if (!this.running || this.timer !== undefined) return;
          const now = Date.now();
          this.loop(this.tickMs - (now % this.tickMs) + 5);
        });
    }, delayMs);
  }

  /** Reports an error once per entry and message, not on every tick. */
  private reportError(error: unknown, scheduleId?: string): void {
    const message = error instanceof Error ? error.message : String(error);
    const key = scheduleId ?? '';
    if (this.reported.get(key) === message) return;
    this.reported.set(key, message);
    if (this.options.onError) this.options.onError(error, scheduleId);
    else process.emitWarning(`beat${scheduleId === undefined ? '' : ` (schedule "${scheduleId}")`}: ${message}`);
  }
}
