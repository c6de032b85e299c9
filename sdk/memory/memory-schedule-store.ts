import type { ScheduleEntry, ScheduleStore } from '../contracts/schedule-store.js';
import { ClosedError, StaleVersionError } from '../errors.js';

function copyEntry(entry: ScheduleEntry): ScheduleEntry {
  return structuredClone(entry);
}

/** Code-unit order, as `ORDER BY id COLLATE "C"` and a Redis sorted set give. */
function byId(a: ScheduleEntry, b: ScheduleEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The embedded schedule store: Beat entries with optimistic versions, in this process. */
export class MemoryScheduleStore implements ScheduleStore {
  private readonly entries = new Map<string, ScheduleEntry>();
  private closed = false;

  /** Stores the entry with version + 1 if its version is the stored one; else StaleVersionError. */
  async upsert(entry: ScheduleEntry): Promise<ScheduleEntry> {
    this.assertOpen();
    const storedVersion = this.entries.get(entry.id)?.version ?? 0;
    if (entry.version !== storedVersion) throw new StaleVersionError('schedule entry', entry.id, entry.version, storedVersion);
    const stored = { ...copyEntry(entry), version: storedVersion + 1 };
    this.entries.set(entry.id, stored);
    return copyEntry(stored);
  }

  /** One entry, or null. */
  async get(id: string): Promise<ScheduleEntry | null> {
    this.assertOpen();
    const entry = this.entries.get(id);
    return entry === undefined ? null : copyEntry(entry);
  }

  /** Every entry, by id. */
  async list(): Promise<ScheduleEntry[]> {
    this.assertOpen();
    return [...this.entries.values()].sort(byId).map(copyEntry);
  }

  /** Deletes an entry; false when there was none. */
  async remove(id: string): Promise<boolean> {
    this.assertOpen();
    return this.entries.delete(id);
  }

  /** Enabled entries with nextRunAt at or before `now`, soonest first (then by id), at most `limit`. */
  async due(now: number, limit = Infinity): Promise<ScheduleEntry[]> {
    this.assertOpen();
    return [...this.entries.values()]
      .filter((entry) => entry.enabled && entry.nextRunAt !== undefined && entry.nextRunAt <= now)
      .sort((a, b) => a.nextRunAt! - b.nextRunAt! || byId(a, b))
      .slice(0, Math.max(0, limit))
      .map(copyEntry);
  }

  /** Forgets every entry; later calls throw ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory schedule store');
  }
}
