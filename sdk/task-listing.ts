import type { TaskQuery, TaskState, TaskStatus } from './contracts/result-backend.js';
import { UsageError } from './errors.js';

/**
 * The rules every `ResultBackend.listTasks` shares: the query checked once, the order (newest
 * `updatedAt` first, ties by id descending) and the cursor, which names the last task of a page
 * by its place in that order, so the next page starts right after it whatever was written meanwhile.
 */

/** Tasks per page when the query names no limit. */
export const DEFAULT_LIST_LIMIT = 50;

/** The largest page a query may ask for. */
export const MAX_LIST_LIMIT = 500;

/** The states a task can be listed under (`pending` is never stored). */
export const LISTED_STATES: readonly TaskState[] = ['queued', 'running', 'retried', 'succeeded', 'failed', 'cancelled'];

/** A place in the listing order: the last task of a page. */
export interface ListPosition {
  updatedAt: number;
  id: string;
}

/** A `TaskQuery` checked and with its defaults: what a backend implements. */
export interface ResolvedTaskQuery {
  /** Any of these states; undefined means every state. */
  states: readonly TaskState[] | undefined;
  name: string | undefined;
  queue: string | undefined;
  /** Inclusive bounds on `updatedAt`. */
  since: number;
  until: number;
  limit: number;
  /** List only tasks after this place (from the cursor). */
  after: ListPosition | undefined;
}

/** Encodes the place of `status` as an opaque cursor. */
export function encodeListCursor(status: Pick<TaskStatus, 'updatedAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([status.updatedAt, status.id])).toString('base64url');
}

/** Decodes a cursor of `encodeListCursor`; throws UsageError for anything else. */
export function decodeListCursor(cursor: string): ListPosition {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || !Number.isFinite(decoded[0]) || typeof decoded[1] !== 'string') {
    throw new UsageError(`cursor ${JSON.stringify(cursor)} is not a task listing cursor; pass the cursor of the previous page as it was`);
  }
  return { updatedAt: decoded[0] as number, id: decoded[1] as string };
}

function checkTime(value: unknown, field: 'since' | 'until'): void {
  if (value !== undefined && !Number.isFinite(value)) {
    throw new UsageError(`${field} ${JSON.stringify(value)} must be epoch milliseconds (a finite number)`);
  }
}

/** Checks `query` and applies its defaults; throws UsageError naming a bad field. */
export function resolveTaskQuery(query: TaskQuery = {}): ResolvedTaskQuery {
  const limit = query.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new UsageError(
      `limit ${JSON.stringify(limit)} must be a whole number from 1 to ${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`,
    );
  }
  let states: readonly TaskState[] | undefined;
  if (query.state !== undefined) {
    states = typeof query.state === 'string' ? [query.state] : [...new Set(query.state)];
    for (const state of states) {
      if (!LISTED_STATES.includes(state)) {
        throw new UsageError(
          `state ${JSON.stringify(state)} is not a state tasks are listed under; use one of ${LISTED_STATES.join(', ')}`,
        );
      }
    }
    if (states.length === 0 || states.length === LISTED_STATES.length) states = undefined;
  }
  checkTime(query.since, 'since');
  checkTime(query.until, 'until');
  return {
    states,
    name: query.name === '' ? undefined : query.name,
    queue: query.queue === '' ? undefined : query.queue,
    since: query.since ?? -Infinity,
    until: query.until ?? Infinity,
    limit,
    after: query.cursor === undefined || query.cursor === '' ? undefined : decodeListCursor(query.cursor),
  };
}

/** Orders statuses newest `updatedAt` first, ties by id descending (the listing order). */
export function newestFirst(a: Pick<TaskStatus, 'updatedAt' | 'id'>, b: Pick<TaskStatus, 'updatedAt' | 'id'>): number {
  if (a.updatedAt !== b.updatedAt) return b.updatedAt - a.updatedAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** True when `status` comes after `position` in the listing order. */
export function isAfter(status: Pick<TaskStatus, 'updatedAt' | 'id'>, position: ListPosition): boolean {
  return status.updatedAt < position.updatedAt || (status.updatedAt === position.updatedAt && status.id < position.id);
}

/** True when `status` is selected by `query` (its filters and its cursor). */
export function matchesTaskQuery(status: TaskStatus, query: ResolvedTaskQuery): boolean {
  if (query.states !== undefined && !query.states.includes(status.state)) return false;
  if (query.name !== undefined && status.name !== query.name) return false;
  if (query.queue !== undefined && status.queue !== query.queue) return false;
  if (status.updatedAt < query.since || status.updatedAt > query.until) return false;
  return query.after === undefined || isAfter(status, query.after);
}

/**
 * The page of `candidates` (matching ones, in any order, at most `limit + 1` of them needed):
 * the first `limit` in listing order, with a cursor when one more exists.
 */
export function pageOf(candidates: TaskStatus[], limit: number): { tasks: TaskStatus[]; cursor?: string } {
  candidates.sort(newestFirst);
  if (candidates.length <= limit) return { tasks: candidates };
  const tasks = candidates.slice(0, limit);
  return { tasks, cursor: encodeListCursor(tasks[limit - 1]!) };
}
