/** When a schedule fires: cron, an interval, or once at a time. */
export type ScheduleSpec = string | { cron: string } | { every: number } | { at: string };

/** One Beat schedule entry, as stored. */
export interface ScheduleEntry {
  /** Unique id, e.g. `nightly-report`. */
  id: string;
  /** The task name to enqueue. */
  task: string;
  /** `*\/5 * * * *`, `every:30s`, `{ every: ms }` or `{ at: ISO }`. */
  schedule: ScheduleSpec;
  /** Arguments of each enqueue. */
  args?: unknown;
  /** Headers of each enqueue. */
  headers?: Record<string, string>;
  /** Queue override. */
  queue?: string;
  /** Priority override. */
  priority?: number;
  /** Disabled entries are kept but never due. */
  enabled: boolean;
  /** Random delay up to this many ms added to each firing. */
  jitterMs?: number;
  /** IANA zone of a cron expression. */
  timezone?: string;
  /** Not due before (epoch ms). */
  startAt?: number;
  /** Not due after (epoch ms). */
  endAt?: number;
  /** Epoch ms of the next firing; undefined when it will not fire again. */
  nextRunAt?: number;
  /** Epoch ms of the last firing. */
  lastRunAt?: number;
  /** How many times it fired. */
  totalRuns?: number;
  /** Optimistic-concurrency version: 0 before the first write, +1 on each. */
  version: number;
}

/** Stores schedule entries for Beat. */
export interface ScheduleStore {
  /**
   * Writes an entry whose `version` must equal the stored version (0 for a new id); stores it with
   * version + 1 and returns it. A stale version throws StaleVersionError.
   */
  upsert(entry: ScheduleEntry): Promise<ScheduleEntry>;
  /** One entry, or null. */
  get(id: string): Promise<ScheduleEntry | null>;
  /** Every entry, ordered by id. */
  list(): Promise<ScheduleEntry[]>;
  /** Deletes an entry; false when there was none. */
  remove(id: string): Promise<boolean>;
  /** Enabled entries with nextRunAt at or before `now`, soonest first, at most `limit`. */
  due(now: number, limit?: number): Promise<ScheduleEntry[]>;
  /** Releases connections. */
  close(): Promise<void>;
}
