/**
 * The schedule phase's rules, with no I/O: what a schedule spec means, when an entry fires next,
 * what a valid schedule definition is, and the Firing Beat hands to the `schedule` hook. The Beat
 * loop (store, locks, enqueue) lives in beat.ts beside it; the CLI's schedule commands use these
 * rules too.
 */
import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import type { ScheduleEntry, ScheduleSpec } from '../../sdk/contracts/schedule-store.js';
import { formatDuration, parseDuration } from '../../sdk/duration.js';
import { assertJsonSerialisable } from '../../sdk/envelope.js';
import { InvalidScheduleError, type DefinitionSource } from '../../sdk/errors.js';
import type { Firing } from '../../sdk/hooks.js';
import type { EnqueueOptions } from '../../sdk/task.js';

/** Header naming the schedule entry a task was enqueued for. */
export const SCHEDULE_ID_HEADER = 'stem-schedule-id';
/** Header carrying the ISO time the firing was due (the slot, not the moment Beat ran). */
export const SCHEDULED_FOR_HEADER = 'stem-scheduled-for';
/** The shortest interval an `every:` schedule may have. */
export const MIN_INTERVAL_MS = 1_000;

/** A parsed schedule: a cron expression (in a zone), a fixed interval, or one point in time. */
export type ScheduleRule =
  | { kind: 'cron'; expression: string; timezone?: string }
  | { kind: 'every'; everyMs: number }
  | { kind: 'at'; at: number };

/** The bounds of an entry's firings (epoch ms, both inclusive). */
export interface ScheduleWindow {
  /** Not due before. */
  startAt?: number;
  /** Not due after. */
  endAt?: number;
}

/** A schedule entry as a user writes it (file or code): the stored entry without Beat's bookkeeping. */
export type ScheduleDefinition = Omit<ScheduleEntry, 'enabled' | 'nextRunAt' | 'lastRunAt' | 'totalRuns' | 'version'> & {
  /** Unset: new entries are enabled and existing ones keep their state. */
  enabled?: boolean;
};

/** The keys a schedule definition may have. */
export const SCHEDULE_DEFINITION_KEYS: readonly (keyof ScheduleDefinition)[] = [
  'id',
  'task',
  'schedule',
  'args',
  'headers',
  'queue',
  'priority',
  'enabled',
  'jitterMs',
  'timezone',
  'startAt',
  'endAt',
];

export { InvalidScheduleError, UnknownScheduleError, type DefinitionSource } from '../../sdk/errors.js';

const EVERY_PREFIX = 'every:';

/** True when `timezone` is an IANA zone this runtime knows. */
export function isKnownTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

function parseCron(expression: string, timezone: string | undefined): ScheduleRule {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  const fields = trimmed.split(' ').length;
  if (trimmed === '' || (!trimmed.startsWith('@') && fields !== 5 && fields !== 6)) {
    throw new InvalidScheduleError(
      'schedule',
      `${JSON.stringify(expression)} is not a cron expression: use 5 fields (minute hour day month weekday), 6 with seconds ` +
        `first, every:30s, { every: ms } or { at: ISO time }`,
    );
  }
  if (timezone !== undefined && !isKnownTimezone(timezone)) {
    throw new InvalidScheduleError('timezone', `${JSON.stringify(timezone)} is not an IANA time zone; use a name like Europe/Paris or UTC`);
  }
  try {
    CronExpressionParser.parse(trimmed, { currentDate: 0, tz: timezone ?? 'UTC' }).next();
  } catch (error) {
    throw new InvalidScheduleError(
      'schedule',
      `${JSON.stringify(expression)} is not a valid cron expression (${(error as Error).message})`,
    );
  }
  return timezone === undefined ? { kind: 'cron', expression: trimmed } : { kind: 'cron', expression: trimmed, timezone };
}

function parseInterval(value: unknown, written: string): ScheduleRule {
  let everyMs: number;
  try {
    everyMs = parseDuration(value as number | string, 'schedule');
  } catch {
    throw new InvalidScheduleError('schedule', `${written} is not an interval; write every:30s, every:5m, every:1h or { every: 30000 }`);
  }
  if (everyMs < MIN_INTERVAL_MS) {
    throw new InvalidScheduleError('schedule', `${written} is shorter than the 1s minimum; use every:1s or longer`);
  }
  return { kind: 'every', everyMs };
}

const ISO_WITH_TIME = /^\d{4}-\d{2}-\d{2}T/;
const HAS_OFFSET = /(Z|[+-]\d{2}:?\d{2})$/i;

/** Parses an ISO time of a schedule field to epoch ms; a time of day needs Z or an offset. */
export function parseScheduleTime(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidScheduleError(field, `${JSON.stringify(value)} is not a time; use an ISO time such as 2030-01-01T09:00:00Z`);
  }
  if (ISO_WITH_TIME.test(value) && !HAS_OFFSET.test(value)) {
    throw new InvalidScheduleError(field, `${JSON.stringify(value)} has no time zone; add Z or an offset such as +02:00`);
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidScheduleError(field, `${JSON.stringify(value)} is not a valid ISO time`);
  return ms;
}

/**
 * Parses a schedule spec: a cron string (5 or 6 fields, or `@daily`…), `every:30s`, `{ every: ms }`,
 * `{ cron }` or `{ at: ISO }`. Throws InvalidScheduleError naming the field.
 */
export function parseScheduleSpec(spec: unknown, timezone?: string): ScheduleRule {
  if (typeof spec === 'string') {
    if (spec.trim().toLowerCase().startsWith(EVERY_PREFIX)) {
      if (timezone !== undefined)
        throw new InvalidScheduleError('timezone', 'only a cron schedule uses a time zone; remove it from this every: entry');
      return parseInterval(spec.trim().slice(EVERY_PREFIX.length).trim(), JSON.stringify(spec));
    }
    return parseCron(spec, timezone);
  }
  if (typeof spec === 'object' && spec !== null && !Array.isArray(spec)) {
    const keys = Object.keys(spec);
    const [key] = keys;
    if (keys.length === 1 && key === 'cron' && typeof (spec as { cron: unknown }).cron === 'string')
      return parseCron((spec as { cron: string }).cron, timezone);
    if (keys.length === 1 && (key === 'every' || key === 'at') && timezone !== undefined) {
      throw new InvalidScheduleError('timezone', `only a cron schedule uses a time zone; remove it from this { ${key} } entry`);
    }
    if (keys.length === 1 && key === 'every') return parseInterval((spec as { every: unknown }).every, JSON.stringify(spec));
    if (keys.length === 1 && key === 'at') return { kind: 'at', at: parseScheduleTime((spec as { at: unknown }).at, 'schedule.at') };
  }
  throw new InvalidScheduleError(
    'schedule',
    `${JSON.stringify(spec)} is not a schedule; use a cron expression ("*/5 * * * *"), "every:30s", { "every": 30000 } or { "at": ` +
      `"2030-01-01T09:00:00Z" }`,
  );
}

/** The rule of a stored entry (its schedule in its time zone). */
export function scheduleRuleOf(entry: Pick<ScheduleEntry, 'schedule' | 'timezone'>): ScheduleRule {
  return parseScheduleSpec(entry.schedule, entry.timezone);
}

function cronAfter(rule: Extract<ScheduleRule, { kind: 'cron' }>, after: number): number | undefined {
  try {
    return CronExpressionParser.parse(rule.expression, { currentDate: after, tz: rule.timezone ?? 'UTC' })
      .next()
      .getTime();
  } catch {
    // The library throws when no later date exists (an expression that cannot match again).
    return undefined;
  }
}

/**
 * The first firing strictly after `after`, inside the window; undefined when there is none.
 * `every:` slots are counted from startAt, or from the Unix epoch (every:5m fires at :00, :05, … UTC),
 * so every Beat process computes the same slots.
 */
export function nextRunAfter(rule: ScheduleRule, after: number, window: ScheduleWindow = {}): number | undefined {
  const from = window.startAt !== undefined ? Math.max(after, window.startAt - 1) : after;
  let next: number | undefined;
  switch (rule.kind) {
    case 'at':
      next = rule.at > from ? rule.at : undefined;
      break;
    case 'every': {
      const anchor = window.startAt ?? 0;
      next = anchor + (Math.floor((from - anchor) / rule.everyMs) + 1) * rule.everyMs;
      break;
    }
    case 'cron':
      next = cronAfter(rule, from);
      break;
  }
  return next !== undefined && (window.endAt === undefined || next <= window.endAt) ? next : undefined;
}

/**
 * The nextRunAt of an entry that is created, changed or enabled at `now`: the next slot after now,
 * except a one-off `at` that never fired, which stays due even when its time has passed.
 */
export function firstRunAt(rule: ScheduleRule, now: number, window: ScheduleWindow = {}, lastRunAt?: number): number | undefined {
  if (rule.kind === 'at') {
    if (lastRunAt !== undefined) return undefined;
    const inWindow = (window.startAt === undefined || rule.at >= window.startAt) && (window.endAt === undefined || rule.at <= window.endAt);
    return inWindow ? rule.at : undefined;
  }
  return nextRunAfter(rule, now, window);
}

/**
 * The nextRunAt after the firing due at `scheduledFor` ran at `now`: the first slot after both, so
 * slots missed while no Beat ran collapse into the one firing that just happened.
 */
export function nextRunAfterFiring(rule: ScheduleRule, scheduledFor: number, now: number, window: ScheduleWindow = {}): number | undefined {
  return rule.kind === 'at' ? undefined : nextRunAfter(rule, Math.max(scheduledFor, now), window);
}

/** The next `count` firings after `from` (for `stem schedule dry-run` and listings). */
export function upcomingRuns(rule: ScheduleRule, from: number, count: number, window: ScheduleWindow = {}): number[] {
  const runs: number[] = [];
  let after = from;
  while (runs.length < count) {
    const next = nextRunAfter(rule, after, window);
    if (next === undefined) break;
    runs.push(next);
    after = next;
  }
  return runs;
}

/** The shortest gap between firings: the interval, or the smallest of a cron's next 20 gaps. */
export function shortestGap(rule: ScheduleRule, from: number): number | undefined {
  if (rule.kind === 'every') return rule.everyMs;
  if (rule.kind === 'at') return undefined;
  const runs = upcomingRuns(rule, from, 21);
  let gap: number | undefined;
  for (let i = 1; i < runs.length; i++) gap = Math.min(gap ?? Infinity, runs[i]! - runs[i - 1]!);
  return gap;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates one raw definition (from a file or code); throws InvalidScheduleError naming the field. */
export function validateScheduleDefinition(raw: unknown, source: DefinitionSource = {}, now = Date.now()): ScheduleDefinition {
  const fail = (field: string, problem: string, id?: string): never => {
    throw new InvalidScheduleError(field, problem, id, source);
  };
  if (!isPlainObject(raw)) return fail('entry', `${JSON.stringify(raw)} is not an object; write { "id": …, "task": …, "schedule": … }`);
  const rawId = raw.id;
  const id = typeof rawId === 'string' && rawId.trim() !== '' ? rawId : undefined;
  for (const key of Object.keys(raw)) {
    if (!(SCHEDULE_DEFINITION_KEYS as readonly string[]).includes(key)) {
      fail(key, `unknown key; a schedule entry has ${SCHEDULE_DEFINITION_KEYS.join(', ')}`, id);
    }
  }
  if (id === undefined)
    return fail(
      'id',
      rawId === undefined
        ? 'missing; give every entry a unique id such as "nightly-report"'
        : `${JSON.stringify(rawId)} is not a non-empty string`,
    );
  if (/\s/.test(id)) fail('id', `${JSON.stringify(id)} contains white space; use letters, digits, dots and dashes`, id);
  if (raw.task === undefined) fail('task', 'missing; name the task to enqueue, e.g. "reports.generate"', id);
  if (typeof raw.task !== 'string' || raw.task.trim() === '') fail('task', `${JSON.stringify(raw.task)} is not a task name`, id);
  if (raw.schedule === undefined) fail('schedule', 'missing; use a cron expression, every:30s, { every: ms } or { at: ISO time }', id);

  const definition: ScheduleDefinition = { id, task: raw.task as string, schedule: raw.schedule as ScheduleSpec };
  if (raw.timezone !== undefined) {
    if (typeof raw.timezone !== 'string') fail('timezone', `${JSON.stringify(raw.timezone)} is not an IANA time zone name`, id);
    definition.timezone = raw.timezone as string;
  }
  let rule: ScheduleRule;
  try {
    rule = parseScheduleSpec(raw.schedule, definition.timezone);
  } catch (error) {
    if (error instanceof InvalidScheduleError) throw error.at(id, source);
    throw error;
  }
  if (isPlainObject(raw.schedule) && 'every' in raw.schedule && rule.kind === 'every') definition.schedule = { every: rule.everyMs };

  if (raw.args !== undefined) {
    try {
      assertJsonSerialisable(raw.args, 'args');
    } catch (error) {
      fail('args', (error as Error).message, id);
    }
    definition.args = raw.args;
  }
  if (raw.headers !== undefined) {
    if (!isPlainObject(raw.headers) || Object.values(raw.headers).some((value) => typeof value !== 'string')) {
      fail('headers', 'must be an object of string values, e.g. { "tenant": "acme" }', id);
    }
    definition.headers = { ...(raw.headers as Record<string, string>) };
  }
  if (raw.queue !== undefined) {
    if (typeof raw.queue !== 'string' || raw.queue.trim() === '') fail('queue', `${JSON.stringify(raw.queue)} is not a queue name`, id);
    definition.queue = raw.queue as string;
  }
  if (raw.priority !== undefined) {
    if (typeof raw.priority !== 'number' || !Number.isInteger(raw.priority) || raw.priority < 0 || raw.priority > 9) {
      fail('priority', `${JSON.stringify(raw.priority)} is out of range; use a whole number from 0 to 9`, id);
    }
    definition.priority = raw.priority as number;
  }
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== 'boolean') fail('enabled', `${JSON.stringify(raw.enabled)} is not true or false`, id);
    definition.enabled = raw.enabled as boolean;
  }
  if (raw.startAt !== undefined) definition.startAt = placed(() => parseScheduleTime(raw.startAt, 'startAt'), id, source);
  if (raw.endAt !== undefined) definition.endAt = placed(() => parseScheduleTime(raw.endAt, 'endAt'), id, source);
  if (definition.startAt !== undefined && definition.endAt !== undefined && definition.endAt <= definition.startAt) {
    fail('endAt', `${new Date(definition.endAt).toISOString()} is not after startAt (${new Date(definition.startAt).toISOString()})`, id);
  }
  if (raw.jitterMs !== undefined) {
    let jitterMs = 0;
    try {
      jitterMs = parseDuration(raw.jitterMs as number | string, 'jitterMs');
    } catch {
      fail('jitterMs', `${JSON.stringify(raw.jitterMs)} is not a duration; use milliseconds (1500) or a string like 500ms, 5s, 5m`, id);
    }
    const gap = shortestGap(rule, definition.startAt ?? now);
    if (gap !== undefined && jitterMs > gap) {
      fail('jitterMs', `${jitterMs}ms is longer than the ${gap}ms between firings; use at most ${gap}ms`, id);
    }
    definition.jitterMs = jitterMs;
  }
  return definition;
}

function placed<T>(read: () => T, id: string, source: DefinitionSource): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof InvalidScheduleError) throw error.at(id, source);
    throw error;
  }
}

/**
 * Validates a whole list: every entry, and that no id is used twice. All problems are collected
 * and thrown as one InvalidScheduleError, so that nothing of a bad list is applied.
 */
export function validateScheduleDefinitions(raws: readonly unknown[], file?: string, now = Date.now()): ScheduleDefinition[] {
  const errors: InvalidScheduleError[] = [];
  const definitions: ScheduleDefinition[] = [];
  const firstIndex = new Map<string, number>();
  raws.forEach((raw, index) => {
    const source: DefinitionSource = file === undefined ? { index } : { file, index };
    try {
      const definition = validateScheduleDefinition(raw, source, now);
      const seen = firstIndex.get(definition.id);
      if (seen !== undefined) {
        errors.push(
          new InvalidScheduleError('id', `used twice (entries #${seen + 1} and #${index + 1}); ids must be unique`, definition.id, source),
        );
      } else {
        firstIndex.set(definition.id, index);
        definitions.push(definition);
      }
    } catch (error) {
      if (!(error instanceof InvalidScheduleError)) throw error;
      errors.push(error);
    }
  });
  if (errors.length > 0) throw InvalidScheduleError.combine(errors);
  return definitions;
}

/** A new stored entry (version 0) for a definition, due at its first run after `now`. */
export function scheduleEntryFor(definition: ScheduleDefinition, now: number): ScheduleEntry {
  const entry: ScheduleEntry = { ...structuredClone(definition), enabled: definition.enabled ?? true, totalRuns: 0, version: 0 };
  const nextRunAt = firstRunAt(scheduleRuleOf(entry), now, entry);
  if (nextRunAt !== undefined) entry.nextRunAt = nextRunAt;
  return entry;
}

/**
 * The task id of the firing of schedule `scheduleId` for the slot `scheduledFor`: the same for every
 * Beat and every attempt, so that a slot fired again after a crash is the same task, not a second one.
 * UUID-shaped (version 8, RFC 9562 "custom"): the first 48 bits are the slot's epoch ms, as in a
 * UUIDv7 (ids sort by slot and `uuidv7Time` reads the slot back); the other 74 bits come from
 * SHA-256 of the schedule id and the slot.
 */
export function firingTaskId(scheduleId: string, scheduledFor: number): string {
  const hash = createHash('sha256').update(`${scheduleId}\n${scheduledFor}`).digest();
  const hex = (from: number, to: number): string => hash.subarray(from, to).toString('hex');
  const ms = Math.max(0, Math.min(Math.floor(scheduledFor), 0xffff_ffff_ffff))
    .toString(16)
    .padStart(12, '0');
  const variant = ((hash[2]! & 0x3f) | 0x80).toString(16).padStart(2, '0');
  return `${ms.slice(0, 8)}-${ms.slice(8)}-8${hex(0, 2).slice(1)}-${variant}${hex(3, 4)}-${hex(4, 10)}`;
}

/** The Firing of `entry` for the slot `scheduledFor`: its deterministic task id, headers set, jitter as a delay. */
export function firingFor(entry: ScheduleEntry, scheduledFor: number, jitterDelayMs = 0): Firing {
  const options: EnqueueOptions = {
    id: firingTaskId(entry.id, scheduledFor),
    headers: { ...entry.headers, [SCHEDULE_ID_HEADER]: entry.id, [SCHEDULED_FOR_HEADER]: new Date(scheduledFor).toISOString() },
  };
  if (entry.queue !== undefined) options.queue = entry.queue;
  if (entry.priority !== undefined) options.priority = entry.priority;
  if (jitterDelayMs > 0) options.notBefore = Math.round(jitterDelayMs);
  return { scheduleId: entry.id, task: entry.task, args: entry.args ?? {}, options, scheduledFor };
}

/** A spec as people read it: `*\/5 * * * * (Europe/Paris)`, `every:30s`, `at 2030-01-01T09:00:00.000Z`. */
export function describeSchedule(spec: ScheduleSpec, timezone?: string): string {
  const zone = timezone === undefined ? '' : ` (${timezone})`;
  if (typeof spec === 'string') return `${spec}${zone}`;
  if ('cron' in spec) return `${spec.cron}${zone}`;
  if ('every' in spec) return `every ${formatDuration(spec.every)}`;
  return `at ${spec.at}`;
}
