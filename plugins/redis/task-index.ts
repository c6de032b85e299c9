import type { TaskPage, TaskQuery, TaskState, TaskStatus } from '../../sdk/contracts/index.js';
import { encodeListCursor, LISTED_STATES, type ListPosition, resolveTaskQuery, type ResolvedTaskQuery } from '../../sdk/task-listing.js';
import type { RedisClient } from './redis-connection.js';

/** Index members read per sorted set and round trip while a page fills. */
const READ_CHUNK = 200;
/** Index members a listing examines at most in one call before it returns what it has, with a cursor. */
const SCAN_BUDGET = 20_000;

/** The 16-digit time of an index member: members sort by it, then by id. */
export function indexTime(updatedAt: number): string {
  return String(Math.max(0, Math.round(updatedAt))).padStart(16, '0');
}

/** The index member of a state: `<time>:<id>`. */
function memberOf(position: ListPosition): string {
  return `${indexTime(position.updatedAt)}:${position.id}`;
}

/** One state's sorted set while a page is read: what was fetched and not yet taken, and where to go on. */
interface SetReader {
  state: TaskState;
  key: string;
  buffered: string[];
  /** The exclusive BYLEX upper bound of the next fetch. */
  next: string;
  exhausted: boolean;
}

/**
 * The listing index of the Redis result backend: one sorted set per state, members
 * `<updatedAt>:<id>` at score 0, so that ZRANGE … BYLEX REV reads newest first with exact cursor
 * positions, ties included. The set-states script keeps it (a task's member moves with its
 * state, in the same atomic call; first-state.lua does it for the producer's first `queued`).
 * Reads check each member against the stored state: a member whose task expired or moved on is
 * skipped and removed.
 */
export class RedisTaskIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly taskKey: (id: string) => string,
  ) {}

  /** The sorted set of a state. */
  stateKey(state: TaskState): string {
    return `${this.prefix}:tasks:${state}`;
  }

  /** The six state sets and the key of the longest TTL written, in the order set-states takes them. */
  scriptKeys(): string[] {
    return [...LISTED_STATES.map((state) => this.stateKey(state)), `${this.prefix}:tasks:longest-ttl`];
  }

  /** The member a state is listed under. */
  member(status: Pick<TaskStatus, 'updatedAt' | 'id'>): string {
    return memberOf(status);
  }

  /** A page of `query`, newest first (see `ResultBackend.listTasks`). */
  async list(query: TaskQuery): Promise<TaskPage> {
    const resolved = resolveTaskQuery(query);
    const upper = this.upperBound(resolved);
    const lower = resolved.since === -Infinity ? '-' : `[${indexTime(resolved.since)}`;
    const readers: SetReader[] = (resolved.states ?? LISTED_STATES).map((state) => ({
      state,
      key: this.stateKey(state),
      buffered: [],
      next: upper,
      exhausted: false,
    }));
    const found: TaskStatus[] = [];
    const stale = new Map<string, string[]>();
    let examined = 0;
    let lastExamined: string | undefined;
    while (found.length <= resolved.limit) {
      await this.fill(readers, lower);
      const batch = this.takeNewest(readers, Math.max(resolved.limit + 1 - found.length, 20));
      if (batch.length === 0) break;
      const raws = await this.client.mget(...batch.map(([, member]) => this.taskKey(member.slice(17))));
      for (let i = 0; i < batch.length && found.length <= resolved.limit; i++) {
        const [reader, member] = batch[i]!;
        examined++;
        lastExamined = member;
        const raw = raws[i];
        const status = raw === null || raw === undefined ? undefined : (JSON.parse(raw) as TaskStatus);
        if (status === undefined || status.state !== reader.state || memberOf(status) !== member) {
          let members = stale.get(reader.key);
          if (members === undefined) stale.set(reader.key, (members = []));
          members.push(member);
          continue;
        }
        if (resolved.name !== undefined && status.name !== resolved.name) continue;
        if (resolved.queue !== undefined && status.queue !== resolved.queue) continue;
        found.push(status);
      }
      if (examined >= SCAN_BUDGET && found.length <= resolved.limit) break;
    }
    if (stale.size > 0) {
      const pipeline = this.client.pipeline();
      for (const [key, members] of stale) pipeline.zrem(key, ...members);
      await pipeline.exec();
    }
    if (found.length > resolved.limit) {
      const tasks = found.slice(0, resolved.limit);
      return { tasks, cursor: encodeListCursor(tasks[resolved.limit - 1]!) };
    }
    // The scan budget ran out before the page filled: what was found, and a cursor to go on from.
    if (
      examined >= SCAN_BUDGET &&
      lastExamined !== undefined &&
      readers.some((reader) => !reader.exhausted || reader.buffered.length > 0)
    ) {
      return { tasks: found, cursor: encodeListCursor({ updatedAt: Number(lastExamined.slice(0, 16)), id: lastExamined.slice(17) }) };
    }
    return { tasks: found };
  }

  /** The exclusive BYLEX upper bound: before the cursor, and at or before `until`. */
  private upperBound(query: ResolvedTaskQuery): string {
    const bounds: string[] = [];
    if (query.after !== undefined) bounds.push(memberOf(query.after));
    // Every member of time `until` sorts below `<until>;` (':' < ';').
    if (query.until !== Infinity) bounds.push(`${indexTime(query.until)};`);
    if (bounds.length === 0) return '+';
    bounds.sort();
    return `(${bounds[0]}`;
  }

  /** Fetches the next chunk of every set whose buffer ran dry, in one round trip. */
  private async fill(readers: SetReader[], lower: string): Promise<void> {
    const empty = readers.filter((reader) => reader.buffered.length === 0 && !reader.exhausted);
    if (empty.length === 0) return;
    const pipeline = this.client.pipeline();
    for (const reader of empty) pipeline.zrange(reader.key, reader.next, lower, 'BYLEX', 'REV', 'LIMIT', 0, READ_CHUNK);
    const replies = (await pipeline.exec()) ?? [];
    empty.forEach((reader, i) => {
      const [error, members] = replies[i] as [Error | null, string[]];
      if (error) throw error;
      reader.buffered = members;
      if (members.length < READ_CHUNK) reader.exhausted = true;
      else reader.next = `(${members[members.length - 1]}`;
    });
  }

  /**
   * Up to `count` members, newest first across the sets (a merge); stops where a set's buffer
   * runs dry while it has more to fetch, since its next members may be newer than the others'.
   */
  private takeNewest(readers: SetReader[], count: number): Array<[SetReader, string]> {
    const taken: Array<[SetReader, string]> = [];
    while (taken.length < count) {
      let best: SetReader | undefined;
      for (const reader of readers) {
        if (reader.buffered.length === 0) {
          if (!reader.exhausted) return taken;
          continue;
        }
        if (best === undefined || reader.buffered[0]! > best.buffered[0]!) best = reader;
      }
      if (best === undefined) return taken;
      taken.push([best, best.buffered.shift()!]);
    }
    return taken;
  }
}
