import type {
  ChordClaim,
  ChordClaimOptions,
  GroupStatus,
  ResultBackend,
  SetOptions,
  StateWriteKey,
  TaskPage,
  TaskQuery,
  TaskStatus,
  Unsubscribe,
  WorkerHeartbeat,
} from '../../sdk/contracts/result-backend.js';
import { FINAL_PHASE, statePosition } from '../../sdk/state-order.js';
import { encodeListCursor, LISTED_STATES, resolveTaskQuery } from '../../sdk/task-listing.js';
import { TaskWatchers } from '../../sdk/task-watchers.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { SqliteService, type SqliteServiceSettings } from './sqlite-service.js';
import type { SqliteStateWriter } from './sqlite-state-writer.js';

/** Expired states, groups, chord claims and heartbeats are deleted this often. */
const PRUNE_INTERVAL_MS = 60_000;
/** Watched ids read back per statement after a change (SQLite's parameter limit is far above). */
const READ_BATCH = 500;

/** States per upsert statement: 8 parameters each (and one more), under SQLite's oldest variable limit (999). */
const STATES_PER_STATEMENT = 100;

const UPSERT_HEAD = 'insert into stem_results (namespace, id, state, generation, attempt, phase, status, expires_at) values ';
/**
 * Each state is inserted, or replaces the stored one only when it is not older (sdk/state-order.ts:
 * generation, attempt, phase; an equal position replaces a state that is not final; an expired row
 * always gives way). A row it does not apply is left as it was.
 */
const UPSERT_TAIL = `on conflict (namespace, id) do update set state = excluded.state, generation = excluded.generation,
    attempt = excluded.attempt,
    phase = excluded.phase, status = excluded.status, expires_at = excluded.expires_at
  where stem_results.expires_at <= ?
    or (excluded.generation, excluded.attempt, excluded.phase) > (stem_results.generation, stem_results.attempt, stem_results.phase)
    or ((excluded.generation, excluded.attempt, excluded.phase) = (stem_results.generation, stem_results.attempt, stem_results.phase)
      and stem_results.phase < ${FINAL_PHASE})`;
const STATE_ROW = '(?, ?, ?, ?, ?, ?, ?, ?)';

/** One state's write: `changes` says whether it was applied (no RETURNING to materialise). */
const UPSERT_ONE = `${UPSERT_HEAD}${STATE_ROW} ${UPSERT_TAIL}`;

const upsertSqls: string[] = [];

/** The write of `rows` states in one statement, returning the ids it applied; built once per size. */
function upsertStatesSql(rows: number): string {
  return (upsertSqls[rows] ??= `${UPSERT_HEAD}${Array.from({ length: rows }, () => STATE_ROW).join(', ')} ${UPSERT_TAIL} returning id`);
}

/** Rows the sweep of expired states that are not final reads per prune. */
const SWEEP_SLICE = 10_000;

/**
 * The SQLite result backend. `set` writes each state with one upsert that enforces the order of
 * states; a batch is one transaction. `watch` hears this process's writes at once and other
 * processes' through the connection's change monitor (the watched ids are read back after each
 * change, so a watcher in another process sees the latest state, not necessarily each one). The
 * group counter and the chord claim are `BEGIN IMMEDIATE` transactions: one process at a time.
 */
export class SqliteResultBackend extends SqliteService implements ResultBackend, SqliteStateWriter {
  private readonly watchers = new TaskWatchers();
  /** The last state each watched id was reported in (JSON), so a read-back reports only news. */
  private readonly lastSeen = new Map<string, string>();
  private unsubscribeChanges: (() => void) | undefined;
  /** Where the sweep of expired states that are not final goes on (the last key it read; '' from the start). */
  private sweptTo = '';
  private readonly stopPrune: () => void;

  /** Uses a shared connection (retained until close). */
  constructor(connection: SqliteConnection, settings: SqliteServiceSettings) {
    super(connection, settings, 'sqlite result backend');
    this.stopPrune = connection.every(PRUNE_INTERVAL_MS, () => this.prune());
  }

  private ttlOf(options: SetOptions): number {
    return Math.max(0, Math.round(options.ttlMs ?? this.settings.resultTtlMs));
  }

  /** Writes every state in one transaction (each only if not older than the stored one) and tells watchers. */
  async set(statuses: readonly TaskStatus[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    if (statuses.length === 0) return;
    const applied = this.connection.immediate(() => this.writeStates(statuses, this.ttlOf(options)));
    this.announce(applied, options);
  }

  /**
   * Writes states inside the caller's transaction and returns those applied (the broker calls it
   * in its own transaction when both share a connection). Call `announce` after the commit.
   */
  writeStates(statuses: readonly TaskStatus[], ttlMs: number): TaskStatus[] {
    const now = Date.now();
    const expiresAt = now + ttlMs;
    if (statuses.length === 1) {
      const status = statuses[0]!;
      const [generation, attempt, phase] = statePosition(status);
      const changes = this.connection
        .prepare(UPSERT_ONE)
        .run(this.namespace, status.id, status.state, generation, attempt, phase, JSON.stringify(status), expiresAt, now).changes;
      return changes > 0 ? [status] : [];
    }
    // The same id twice in one statement: which write won is only known row by row.
    const ids = new Set<string>();
    for (const status of statuses) ids.add(status.id);
    const step = ids.size === statuses.length ? STATES_PER_STATEMENT : 1;
    const applied: TaskStatus[] = [];
    for (let start = 0; start < statuses.length; start += step) {
      const slice = statuses.length <= step ? statuses : statuses.slice(start, start + step);
      const values: unknown[] = [];
      for (const status of slice) {
        const [generation, attempt, phase] = statePosition(status);
        values.push(this.namespace, status.id, status.state, generation, attempt, phase, JSON.stringify(status), expiresAt);
      }
      values.push(now);
      const written = this.connection.prepare(upsertStatesSql(slice.length)).pluck().all(values) as string[];
      if (written.length === slice.length) applied.push(...slice);
      else if (written.length > 0) {
        const wrote = new Set(written);
        for (const status of slice) if (wrote.has(status.id)) applied.push(status);
      }
    }
    return applied;
  }

  /** After a commit of `applied` states: this backend's watchers hear them now, other services of the process after this job. */
  announce(applied: readonly TaskStatus[], options: SetOptions = {}): void {
    if (applied.length === 0) return;
    if (options.quiet !== true) {
      for (const status of applied) if (this.watchers.has(status.id)) this.emit(status.id, JSON.stringify(status));
    }
    this.connection.monitor.announce();
  }

  /** The TTL a write with these options keeps its states for. */
  ttlFor(options: SetOptions): number {
    return this.ttlOf(options);
  }

  /** This backend as the SQLite broker's state writer, when `key` is its connection's. */
  stateWriter<Writer>(key: StateWriteKey<Writer>): Writer | undefined {
    const own: StateWriteKey<SqliteStateWriter> = this.connection.stateWrites;
    return (key as object) === own ? (this as SqliteStateWriter as unknown as Writer) : undefined;
  }

  /**
   * Stored tasks matching `query`, newest first: per state asked, one range scan of the listing
   * index (namespace, state, updatedAt, id) from the cursor down, merged and cut to the page.
   * Queued rows are not in that index (migration 06: an enqueue adds no index entry), so `queued`
   * is a scan of the namespace's rows, sorted. Name and queue filter the rows scanned.
   */
  async listTasks(query: TaskQuery): Promise<TaskPage> {
    this.assertOpen();
    const resolved = resolveTaskQuery(query);
    // The index's expression, written the same way so that SQLite matches it.
    const updatedAt = "json_extract(status, '$.updatedAt')";
    const conditions = ['namespace = ?', 'expires_at > ?'];
    const values: unknown[] = [this.namespace, Date.now()];
    if (resolved.since !== -Infinity) {
      conditions.push(`${updatedAt} >= ?`);
      values.push(resolved.since);
    }
    if (resolved.until !== Infinity) {
      conditions.push(`${updatedAt} <= ?`);
      values.push(resolved.until);
    }
    if (resolved.after !== undefined) {
      // The plain bound lets SQLite start the index scan at the cursor; the row value settles ties.
      conditions.push(`${updatedAt} <= ?`, `(${updatedAt}, id) < (?, ?)`);
      values.push(resolved.after.updatedAt, resolved.after.updatedAt, resolved.after.id);
    }
    if (resolved.name !== undefined) {
      conditions.push("json_extract(status, '$.name') = ?");
      values.push(resolved.name);
    }
    if (resolved.queue !== undefined) {
      conditions.push("json_extract(status, '$.queue') = ?");
      values.push(resolved.queue);
    }
    const take = resolved.limit + 1;
    const states = resolved.states ?? LISTED_STATES;
    // The state as a literal (one of LISTED_STATES), and the index's own WHERE spelled out: SQLite
    // uses a partial index only when the query carries its WHERE term.
    const scan = (state: string): string => `select * from (select status, ${updatedAt} as updated_at, id from stem_results
      where state = '${state}'${state === 'queued' ? '' : " and state <> 'queued'"} and ${conditions.join(' and ')}
      order by ${updatedAt} desc, id desc limit ${take})`;
    const rows = this.connection
      .prepare(`select status from (${states.map(scan).join(' union all ')}) order by updated_at desc, id desc limit ${take}`)
      .pluck()
      .all(states.flatMap(() => values)) as string[];
    const tasks = rows.map((row) => JSON.parse(row) as TaskStatus);
    if (tasks.length <= resolved.limit) return { tasks };
    tasks.length = resolved.limit;
    return { tasks, cursor: encodeListCursor(tasks[resolved.limit - 1]!) };
  }

  /** The stored state, or null when unknown or expired. */
  async get(id: string): Promise<TaskStatus | null> {
    this.assertOpen();
    const status = this.connection
      .prepare('select status from stem_results where namespace = ? and id = ? and expires_at > ?')
      .pluck()
      .get(this.namespace, id, Date.now()) as string | undefined;
    return status === undefined ? null : (JSON.parse(status) as TaskStatus);
  }

  /** Calls `listener` on each later write of `id` from any process. */
  async watch(id: string, listener: (status: TaskStatus) => void): Promise<Unsubscribe> {
    this.assertOpen();
    this.unsubscribeChanges ??= this.connection.monitor.subscribe(() => this.readBack());
    // What is stored now is not news: a read-back reports only later writes.
    if (!this.lastSeen.has(id)) {
      const stored = this.connection
        .prepare('select status from stem_results where namespace = ? and id = ? and expires_at > ?')
        .pluck()
        .get(this.namespace, id, Date.now()) as string | undefined;
      if (stored !== undefined) this.lastSeen.set(id, stored);
    }
    return this.watchers.add(id, listener, (unwatched) => {
      this.lastSeen.delete(unwatched);
      if (this.watchers.ids().length === 0) {
        this.unsubscribeChanges?.();
        this.unsubscribeChanges = undefined;
      }
    });
  }

  /** `watch`, then `get`, in one step: a write between the two cannot be missed. */
  async watchCurrent(
    id: string,
    listener: (status: TaskStatus) => void,
  ): Promise<{ unsubscribe: Unsubscribe; current: TaskStatus | null }> {
    const unsubscribe = await this.watch(id, listener);
    const current = await this.get(id);
    if (current !== null) this.lastSeen.set(id, JSON.stringify(current));
    return { unsubscribe, current };
  }

  /** Creates the group, or starts it over with no results, in one transaction. */
  async initGroup(groupId: string, memberIds: readonly string[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const expiresAt = Date.now() + this.ttlOf(options);
    this.connection.immediate(() => {
      this.connection.prepare('delete from stem_group_results where namespace = ? and group_id = ?').run(this.namespace, groupId);
      this.connection
        .prepare(
          `insert into stem_groups (namespace, id, member_ids, expected, completed, expires_at) values (?, ?, ?, ?, 0, ?)
          on conflict (namespace, id) do update set member_ids = excluded.member_ids, expected = excluded.expected, completed = 0,
            expires_at = excluded.expires_at`,
        )
        .run(this.namespace, groupId, JSON.stringify([...memberIds]), memberIds.length, expiresAt);
    });
  }

  /**
   * Records a member's result (the first record of a member wins) and returns the counts, in one
   * `BEGIN IMMEDIATE` transaction: concurrent members, in any process, each see the count including
   * every earlier one, so exactly one sees completed = expected.
   */
  async recordGroupResult(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number }> {
    this.assertOpen();
    return this.connection.immediate(() => {
      const group = this.connection
        .prepare('select member_ids, expected, completed from stem_groups where namespace = ? and id = ? and expires_at > ?')
        .get(this.namespace, groupId, Date.now()) as { member_ids: string; expected: number; completed: number } | undefined;
      if (group === undefined) return { completed: 0, expected: 0 };
      if (!(JSON.parse(group.member_ids) as string[]).includes(status.id)) return { completed: group.completed, expected: group.expected };
      const recorded = this.connection
        .prepare('insert into stem_group_results (namespace, group_id, member_id, status) values (?, ?, ?, ?) on conflict do nothing')
        .run(this.namespace, groupId, status.id, JSON.stringify(status));
      if (recorded.changes === 0) return { completed: group.completed, expected: group.expected };
      this.connection
        .prepare('update stem_groups set completed = completed + 1 where namespace = ? and id = ?')
        .run(this.namespace, groupId);
      return { completed: group.completed + 1, expected: group.expected };
    });
  }

  /** The group with results in member order, or null. */
  async getGroup(groupId: string): Promise<GroupStatus | null> {
    this.assertOpen();
    const group = this.connection
      .prepare('select member_ids from stem_groups where namespace = ? and id = ? and expires_at > ?')
      .get(this.namespace, groupId, Date.now()) as { member_ids: string } | undefined;
    if (group === undefined) return null;
    const rows = this.connection
      .prepare('select member_id, status from stem_group_results where namespace = ? and group_id = ?')
      .all(this.namespace, groupId) as Array<{
      member_id: string;
      status: string;
    }>;
    const results = new Map(rows.map((row) => [row.member_id, JSON.parse(row.status) as TaskStatus]));
    const memberIds = JSON.parse(group.member_ids) as string[];
    const ordered = memberIds.map((id) => results.get(id) ?? null);
    return {
      id: groupId,
      memberIds,
      expected: memberIds.length,
      completed: ordered.filter((status) => status !== null).length,
      results: ordered,
    };
  }

  /**
   * Wins on a missing or expired claim, or takes over one whose lease ended unfired; one
   * `BEGIN IMMEDIATE` transaction, so exactly one caller of any process wins. A loser is told what
   * holds the claim.
   */
  async claimChord(chordId: string, options: ChordClaimOptions = {}): Promise<ChordClaim> {
    this.assertOpen();
    return this.connection.immediate((): ChordClaim => {
      const now = Date.now();
      const prior = this.connection
        .prepare('select claimer, fired, lease_ends_at, expires_at from stem_chords where namespace = ? and id = ?')
        .get(this.namespace, chordId) as { claimer: string; fired: number; lease_ends_at: number | null; expires_at: number } | undefined;
      const live = prior !== undefined && prior.expires_at > now;
      const abandoned = live && prior.fired === 0 && prior.lease_ends_at !== null && prior.lease_ends_at <= now;
      if (!live || abandoned) {
        const leaseEndsAt = options.leaseMs === undefined ? null : now + Math.max(1, Math.ceil(options.leaseMs));
        this.connection
          .prepare(
            `insert into stem_chords (namespace, id, claimer, claimed_at, lease_ends_at, fired, expires_at) values (?, ?, ?, ?, ?, 0, ?)
            on conflict (namespace, id) do update set claimer = excluded.claimer, claimed_at = excluded.claimed_at,
              lease_ends_at = excluded.lease_ends_at, fired = 0, expires_at = excluded.expires_at`,
          )
          .run(this.namespace, chordId, options.claimer ?? '', now, leaseEndsAt, now + this.ttlOf(options));
        return abandoned ? { won: true, takenOverFrom: prior!.claimer } : { won: true };
      }
      const lost: ChordClaim = { won: false, fired: prior.fired === 1, claimer: prior.claimer };
      if (prior.fired === 0 && prior.lease_ends_at !== null) lost.leaseEndsAt = prior.lease_ends_at;
      return lost;
    });
  }

  /** Marks the claim fired (creating it if it expired), so it is never taken over. */
  async chordFired(chordId: string, options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    this.connection
      .prepare(
        `insert into stem_chords (namespace, id, claimer, claimed_at, fired, expires_at) values (?, ?, '', ?, 1, ?)
        on conflict (namespace, id) do update set fired = 1, expires_at = excluded.expires_at`,
      )
      .run(this.namespace, chordId, now, now + this.ttlOf(options));
  }

  /** Records the worker's beat, replacing its previous one. */
  async heartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void> {
    this.assertOpen();
    this.connection
      .prepare(
        `insert into stem_workers (namespace, worker_id, beat, expires_at) values (?, ?, ?, ?)
        on conflict (namespace, worker_id) do update set beat = excluded.beat, expires_at = excluded.expires_at`,
      )
      .run(this.namespace, beat.workerId, JSON.stringify(beat), Date.now() + Math.max(0, Math.round(ttlMs)));
  }

  /** Workers with a live heartbeat, by worker id. */
  async listWorkers(): Promise<WorkerHeartbeat[]> {
    this.assertOpen();
    const rows = this.connection
      .prepare('select beat from stem_workers where namespace = ? and expires_at > ? order by worker_id')
      .pluck()
      .all(this.namespace, Date.now()) as string[];
    return rows.map((beat) => JSON.parse(beat) as WorkerHeartbeat);
  }

  /**
   * Deletes expired final states, groups (with their results), chord claims and heartbeats; and
   * sweeps the next slice of states by key for expired ones that never became final (rare: an
   * abandoned task), so that the expiry index need only hold final states.
   */
  prune(): void {
    const now = Date.now();
    const ns = this.namespace;
    this.connection.immediate(() => {
      // The index holds final states only: the literal phase lets the planner use it.
      this.connection
        .prepare(
          `delete from stem_results indexed by stem_results_expiry where phase >= ${FINAL_PHASE} and expires_at <= ? and namespace = ?`,
        )
        .run(now, ns);
      const slice = this.connection
        .prepare('select id, expires_at from stem_results where namespace = ? and id > ? order by id limit ?')
        .all(ns, this.sweptTo, SWEEP_SLICE) as Array<{ id: string; expires_at: number }>;
      const remove = this.connection.prepare('delete from stem_results where namespace = ? and id = ?');
      for (const row of slice) if (row.expires_at <= now) remove.run(ns, row.id);
      this.sweptTo = slice.length < SWEEP_SLICE ? '' : slice[slice.length - 1]!.id;
      this.connection
        .prepare(
          `delete from stem_group_results where namespace = ? and group_id in (select id from stem_groups where namespace = ? and ` +
            `expires_at <= ?)`,
        )
        .run(ns, ns, now);
      this.connection.prepare('delete from stem_groups where expires_at <= ? and namespace = ?').run(now, ns);
      this.connection.prepare('delete from stem_chords where expires_at <= ? and namespace = ?').run(now, ns);
      this.connection.prepare('delete from stem_workers where expires_at <= ? and namespace = ?').run(now, ns);
    });
  }

  /** Stops watching and the pruning timer. */
  protected override async dispose(): Promise<void> {
    this.watchers.clear();
    this.lastSeen.clear();
    this.unsubscribeChanges?.();
    this.unsubscribeChanges = undefined;
    this.stopPrune();
  }

  /** After a change (another process's commit, or this process's): reads the watched ids back and reports what is new. */
  private readBack(): void {
    if (this.isClosed) return;
    const ids = this.watchers.ids();
    const now = Date.now();
    for (let start = 0; start < ids.length; start += READ_BATCH) {
      const batch = ids.slice(start, start + READ_BATCH);
      let rows: Array<{ id: string; status: string }>;
      try {
        rows = this.connection
          .prepare(
            `select id, status from stem_results where namespace = ? and expires_at > ? and id in (${batch.map(() => '?').join(', ')})`,
          )
          .all(this.namespace, now, ...batch) as Array<{ id: string; status: string }>;
      } catch {
        // Busy: the next change (or the monitor's next look) reads again.
        return;
      }
      for (const row of rows) if (this.lastSeen.get(row.id) !== row.status) this.emit(row.id, row.status);
    }
  }

  private emit(id: string, json: string): void {
    const listeners = this.watchers.get(id);
    if (listeners === undefined) return;
    this.lastSeen.set(id, json);
    const status = JSON.parse(json) as TaskStatus;
    for (const listener of [...listeners]) listener(status);
  }
}
