import { isDeepStrictEqual } from 'node:util';
import {
  firstRunAt,
  SCHEDULE_DEFINITION_KEYS,
  scheduleEntryFor,
  scheduleRuleOf,
  UnknownScheduleError,
  type ScheduleDefinition,
} from './schedule-rules.js';
import type { ScheduleEntry, ScheduleStore } from '../../sdk/contracts/schedule-store.js';
import { StaleVersionError } from '../../sdk/errors.js';

/** An entry of the store that a file changes, and how. */
export interface ScheduleChange {
  /** The entry id. */
  id: string;
  /** The fields whose value the file changes. */
  fields: string[];
  /** The stored entry before. */
  before: ScheduleEntry;
  /** The definition from the file. */
  after: ScheduleDefinition;
}

/** What applying a list of definitions does to the store: computed first, written only by `apply`. */
export interface SchedulePlan {
  /** Definitions with no stored entry. */
  added: ScheduleDefinition[];
  /** Stored entries the definitions change. */
  changed: ScheduleChange[];
  /** Stored entries not in the list, removed because of `prune`. */
  removed: ScheduleEntry[];
  /** Ids whose stored entry already matches. */
  unchanged: string[];
  /** Ids of stored entries not in the list, kept because `prune` is off. */
  kept: string[];
}

/** Fields whose change moves the next run. */
const TIMING_FIELDS = new Set<string>(['schedule', 'timezone', 'startAt', 'endAt']);
/** How often a write is retried after someone else (usually a Beat recording a run) wrote first. */
const STALE_RETRIES = 5;

/** The definition fields of a stored entry, or of a definition, that differ. */
function changedFields(entry: ScheduleEntry, definition: ScheduleDefinition): string[] {
  return SCHEDULE_DEFINITION_KEYS.filter((key) => {
    if (key === 'enabled' && definition.enabled === undefined) return false;
    return !isDeepStrictEqual(entry[key] ?? undefined, definition[key] ?? undefined);
  });
}

/**
 * The stored entry with a definition's fields: Beat's bookkeeping (lastRunAt, totalRuns) is kept;
 * nextRunAt is recomputed when the timing changed or the entry is enabled again.
 */
function mergeDefinition(entry: ScheduleEntry, definition: ScheduleDefinition, now: number): ScheduleEntry {
  const fields = changedFields(entry, definition);
  const merged: ScheduleEntry = { ...structuredClone(definition), enabled: definition.enabled ?? entry.enabled, version: entry.version };
  if (entry.lastRunAt !== undefined) merged.lastRunAt = entry.lastRunAt;
  merged.totalRuns = entry.totalRuns ?? 0;
  const retimed = fields.some((field) => TIMING_FIELDS.has(field)) || (merged.enabled && !entry.enabled);
  // A retimed one-off `at` is a new one-off: it fires again even if the old one fired.
  const nextRunAt = retimed
    ? firstRunAt(scheduleRuleOf(merged), now, merged, fields.some((field) => TIMING_FIELDS.has(field)) ? undefined : entry.lastRunAt)
    : entry.nextRunAt;
  if (nextRunAt !== undefined) merged.nextRunAt = nextRunAt;
  return merged;
}

/**
 * Edits the entries of a schedule store on behalf of people (files, the CLI): plans and applies
 * definitions, enables, disables and removes. Every write is a versioned upsert; when a Beat
 * records a run in between, the write is rejected (StaleVersionError), re-read and retried.
 */
export class ScheduleEditor {
  private readonly now: () => number;

  constructor(
    private readonly store: ScheduleStore,
    options: { now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** What applying `definitions` would change; nothing is written. */
  async plan(definitions: readonly ScheduleDefinition[], options: { prune?: boolean } = {}): Promise<SchedulePlan> {
    const stored = new Map((await this.store.list()).map((entry) => [entry.id, entry]));
    const plan: SchedulePlan = { added: [], changed: [], removed: [], unchanged: [], kept: [] };
    for (const definition of definitions) {
      const entry = stored.get(definition.id);
      stored.delete(definition.id);
      if (entry === undefined) {
        plan.added.push(definition);
        continue;
      }
      const fields = changedFields(entry, definition);
      if (fields.length === 0) plan.unchanged.push(definition.id);
      else plan.changed.push({ id: definition.id, fields, before: entry, after: definition });
    }
    for (const entry of stored.values()) {
      if (options.prune) plan.removed.push(entry);
      else plan.kept.push(entry.id);
    }
    return plan;
  }

  /** Writes a plan: adds, updates (keeping Beat's bookkeeping) and removes. */
  async apply(plan: SchedulePlan): Promise<void> {
    for (const definition of plan.added)
      await this.write(definition.id, (entry) =>
        entry === null ? scheduleEntryFor(definition, this.now()) : mergeDefinition(entry, definition, this.now()),
      );
    for (const change of plan.changed)
      await this.write(change.id, (entry) =>
        entry === null ? scheduleEntryFor(change.after, this.now()) : mergeDefinition(entry, change.after, this.now()),
      );
    for (const entry of plan.removed) await this.store.remove(entry.id);
  }

  /** Enables or disables an entry; enabling computes its next run from now (no catch-up for the time it was off). */
  async setEnabled(id: string, enabled: boolean): Promise<ScheduleEntry> {
    return this.write(id, (entry) => {
      if (entry === null) throw new UnknownScheduleError(id);
      if (entry.enabled === enabled) return null;
      const updated: ScheduleEntry = { ...entry, enabled };
      if (enabled) {
        const nextRunAt = firstRunAt(scheduleRuleOf(entry), this.now(), entry, entry.lastRunAt);
        if (nextRunAt === undefined) delete updated.nextRunAt;
        else updated.nextRunAt = nextRunAt;
      }
      return updated;
    });
  }

  /** One entry; UnknownScheduleError when there is none. */
  async get(id: string): Promise<ScheduleEntry> {
    const entry = await this.store.get(id);
    if (entry === null) throw new UnknownScheduleError(id);
    return entry;
  }

  /** Removes an entry and returns it; UnknownScheduleError when there is none. */
  async remove(id: string): Promise<ScheduleEntry> {
    const entry = await this.get(id);
    if (!(await this.store.remove(id))) throw new UnknownScheduleError(id);
    return entry;
  }

  /** Reads, transforms and upserts one entry, again from a fresh read when the write was stale. */
  private async write(id: string, update: (entry: ScheduleEntry | null) => ScheduleEntry | null): Promise<ScheduleEntry> {
    for (let attempt = 0; ; attempt++) {
      const entry = await this.store.get(id);
      const next = update(entry);
      if (next === null) return entry!;
      try {
        return await this.store.upsert({ ...next, version: entry?.version ?? 0 });
      } catch (error) {
        if (!(error instanceof StaleVersionError) || attempt >= STALE_RETRIES) throw error;
      }
    }
  }
}
