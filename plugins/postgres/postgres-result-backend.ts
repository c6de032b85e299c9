import { sql, type RawBuilder } from 'kysely';
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
import { numberArray } from './message-rows.js';
import type { PostgresConnection } from './postgres-connection.js';
import { PostgresService } from './postgres-service.js';
import type { PostgresStateWriter, StateWriteSql, StateWriteValues } from './postgres-state-writer.js';
import { TaskWatchers } from '../../sdk/task-watchers.js';
import { FINAL_PHASE, STATE_PHASE, statePosition, supersedes } from '../../sdk/state-order.js';
import { encodeListCursor, LISTED_STATES, resolveTaskQuery } from '../../sdk/task-listing.js';

/** The phase of a state column in SQL, as STATE_PHASE gives it. */
function phaseOf(state: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(case ${state} when 'pending' then ${sql.lit(STATE_PHASE.pending)} when 'queued' then ${sql.lit(STATE_PHASE.queued)}
    when 'running' then ${sql.lit(STATE_PHASE.running)}
    when 'retried' then ${sql.lit(STATE_PHASE.retried)} else ${sql.lit(FINAL_PHASE)} end)`;
}

/** NOTIFY payloads must stay under 8000 bytes; a larger state is sent as its id and read back. */
const MAX_NOTIFY_BYTES = 7_900;

/** Expired states, groups, chord claims and heartbeats are deleted this often. */
const PRUNE_INTERVAL_MS = 60_000;

/**
 * The Postgres result backend. `set` writes any number of states in one
 * `INSERT … ON CONFLICT DO UPDATE` that also NOTIFYs each write, so `watch` works across
 * processes; expired rows read as null and are pruned every minute; the group counter and the
 * chord claim are single statements that serialise on their row.
 */
export class PostgresResultBackend extends PostgresService implements ResultBackend, PostgresStateWriter {
  private readonly watchers = new TaskWatchers();
  /** The last state each watched id was seen in (JSON), so a catch-up after a reconnect skips repeats. */
  private readonly lastSeen = new Map<string, string>();
  private readonly channel: string;
  private listening: Promise<() => Promise<void>> | undefined;
  private stopReconnect: (() => void) | undefined;
  private readonly stopPrune: () => void;

  /** Uses a shared connection (retained until close). */
  constructor(connection: PostgresConnection) {
    super(connection, 'postgres result backend');
    this.channel = connection.channel('results');
    this.stopPrune = connection.every(PRUNE_INTERVAL_MS, () => this.prune());
  }

  private ttlOf(options: SetOptions): number {
    return Math.max(0, Math.round(options.ttlMs ?? this.connection.options.resultTtlMs));
  }

  /** Writes every state in one statement, each replacing the stored one, and NOTIFYs watchers. */
  async set(statuses: readonly TaskStatus[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    if (statuses.length === 0) return;
    const { written, notify } = this.upsertParts(statuses, options);
    await this.connection.run(() => sql`with written as (${written}) ${notify}`.execute(this.connection.db));
  }

  /**
   * The two halves of `set`'s statement: `written`, the upsert (the last state of an id wins)
   * to use as the CTE `written`, and `notify`, the select that NOTIFYs each write. The broker
   * embeds them next to its ack when both share a connection (see PostgresBroker.ackWithStates).
   */
  upsertParts(statuses: readonly TaskStatus[], options: SetOptions = {}): StateWriteSql {
    return this.upsertSql(this.upsertValues(statuses, options), options.quiet === true);
  }

  /** The values the state write binds: of an id's states, the newest only. */
  upsertValues(statuses: readonly TaskStatus[], options: SetOptions = {}): StateWriteValues {
    // ON CONFLICT cannot touch a row twice in one statement: of an id's states, the newest goes.
    const newest = new Map<string, TaskStatus>();
    for (const status of statuses) {
      if (supersedes(status, newest.get(status.id))) newest.set(status.id, status);
    }
    const ids: string[] = [];
    const states: string[] = [];
    const generations: number[] = [];
    const attempts: number[] = [];
    const updatedAts: number[] = [];
    for (const status of newest.values()) {
      const [generation, attempt] = statePosition(status);
      ids.push(status.id);
      states.push(status.state);
      generations.push(generation);
      attempts.push(attempt);
      // A status without a finite updatedAt (a caller's own write) lists as the oldest, as before.
      updatedAts.push(Number.isFinite(status.updatedAt) ? status.updatedAt : 0);
    }
    // The statuses travel as one JSON array, not a text[] of JSON: pg would escape every quote of
    // every status into an array literal, which costs more than the rest of the write. The server
    // never parses a status into text (updated_at comes as a parameter of its own, migration 11):
    // a string holding NUL or a lone surrogate, which text cannot hold, stays an escape in the JSON.
    const encoded = JSON.stringify([...newest.values()]);
    return {
      ids,
      states,
      statuses: encoded,
      generations: numberArray(generations),
      attempts: numberArray(attempts),
      updatedAts: numberArray(updatedAts),
      ttlMs: this.ttlOf(options),
    };
  }

  /**
   * The state write for `values` (those of `upsertValues`, or placeholders for them): `written`,
   * the upsert, and `notify`, the select that NOTIFYs each write (or counts them when `quiet`).
   */
  upsertSql(values: StateWriteValues, quiet: boolean): StateWriteSql {
    const stored = this.table('stem_results');
    // The order of sdk/state-order.ts: an expired row, or an older position, gives way; an equal
    // position gives way unless it is final.
    return {
      written: sql`insert into ${stored} (namespace, id, state, status, expires_at, generation, attempt, updated_at)
        select ${this.namespace}, u.id, u.state, u.status, now() + ${values.ttlMs} * interval '1 millisecond', u.generation,
          u.attempt, u.updated_at
        from rows from (unnest(${values.ids}::text[]), unnest(${values.states}::text[]), json_array_elements(${values.statuses}::json),
          unnest(${values.generations}::int[]), unnest(${values.attempts}::int[]), unnest(${values.updatedAts}::float8[]))
          with ordinality as u(id, state, status, generation, attempt, updated_at, ord)
        order by u.ord
        on conflict (namespace, id) do update
          set state = excluded.state, status = excluded.status, expires_at = excluded.expires_at, generation = excluded.generation,
            attempt = excluded.attempt, updated_at = excluded.updated_at
          where ${stored}.expires_at <= now()
            or (excluded.generation, excluded.attempt, ${phaseOf(sql`excluded.state`)}) > (${stored}.generation, ${stored}.attempt,
              ${phaseOf(sql`${stored}.state`)})
            or ((excluded.generation, excluded.attempt, ${phaseOf(sql`excluded.state`)}) = (${stored}.generation, ${stored}.attempt,
              ${phaseOf(sql`${stored}.state`)})
              and ${phaseOf(sql`${stored}.state`)} < ${sql.lit(FINAL_PHASE)})
        ${quiet ? sql`returning id` : sql`returning id, status::text as status`}`,
      notify: quiet
        ? sql`select count(*) from written`
        : sql`select pg_notify(${this.channel},
        case when octet_length(w.status) + octet_length(w.id) < ${MAX_NOTIFY_BYTES} then w.id || E'\\n' || w.status else w.id end)
        from written w`,
    };
  }

  /** This backend as the Postgres broker's state writer, when `key` is its connection's. */
  stateWriter<Writer>(key: StateWriteKey<Writer>): Writer | undefined {
    const own: StateWriteKey<PostgresStateWriter> = this.connection.stateWrites;
    return (key as object) === own ? (this as PostgresStateWriter as unknown as Writer) : undefined;
  }

  /**
   * The stored state, or null when unknown or expired. With no row of its own for the task, the
   * `queued` state its message row carries (an enqueue through this plugin's broker writes it
   * there, migration 10): one snapshot reads both, so a worker's ack, which deletes the message and
   * writes the state in one statement, is seen whole or not at all.
   */
  async get(id: string): Promise<TaskStatus | null> {
    this.assertOpen();
    // The second branch runs only when the first found nothing (an Append under a LIMIT stops early).
    const rows = await this.connection.run(() =>
      this.connection.prepared(
        sql<{ status: string }>`select status::text as status from ${this.table('stem_results')}
          where namespace = ${this.namespace} and id = ${id} and expires_at > now()
          union all
          (select queued_state from ${this.table('stem_messages')}
            where task_id collate "C" = ${id} and queued_state is not null and namespace = ${this.namespace} limit 1)
          limit 1`,
      ),
    );
    return rows[0] === undefined ? null : (JSON.parse(rows[0].status) as TaskStatus);
  }

  /**
   * Stored tasks matching `query`, newest first: per state asked, one ordered range scan of the
   * listing index (namespace, state, updatedAt, id) from the cursor down, merged and cut to the
   * page. Queued rows are not in that index (migration 08: an enqueue adds no index entry), so
   * `queued` is a scan of the namespace's rows, sorted, and of its message rows that carry a
   * `queued` state (migration 10) of a task with no state row. Name and queue filter the rows scanned.
   * Fields are read with `stem_json_field` (migration 11), which never fails on a string holding NUL
   * or a lone surrogate, as `->>` does.
   */
  async listTasks(query: TaskQuery): Promise<TaskPage> {
    this.assertOpen();
    const resolved = resolveTaskQuery(query);
    const stored = this.table('stem_results');
    const updatedAt = sql`updated_at`;
    const field = (key: string) => sql`${sql.id(this.connection.options.schema, 'stem_json_field')}(status::text, ${sql.lit(key)})`;
    const conditions: Array<RawBuilder<unknown>> = [sql`namespace = ${this.namespace}`, sql`expires_at > now()`];
    if (resolved.since !== -Infinity) conditions.push(sql`${updatedAt} >= ${Math.ceil(resolved.since)}`);
    if (resolved.until !== Infinity) conditions.push(sql`${updatedAt} <= ${Math.floor(resolved.until)}`);
    if (resolved.after !== undefined) {
      conditions.push(
        sql`(${updatedAt}, id collate "C") < (${Math.round(resolved.after.updatedAt)}, ${resolved.after.id}::text collate "C")`,
      );
    }
    if (resolved.name !== undefined) conditions.push(sql`${field('name')} = ${resolved.name}`);
    if (resolved.queue !== undefined) conditions.push(sql`${field('queue')} = ${resolved.queue}`);
    const where = sql.join(conditions, sql` and `);
    const take = resolved.limit + 1;
    // The state as a literal (one of LISTED_STATES): the planner must see it is not 'queued' to use the partial index.
    const scans = (resolved.states ?? LISTED_STATES).map(
      (state) => sql`(select status::text as status, ${updatedAt} as updated_at, id collate "C" as id from ${stored}
        where state = ${sql.lit(state)} and ${where} order by ${updatedAt} desc, id collate "C" desc limit ${take})`,
    );
    if ((resolved.states ?? LISTED_STATES).includes('queued')) {
      // The `queued` states carried by message rows (migration 10) of tasks with no state row, seen
      // as rows of the same shape; a broadcast's copies carry the same state, listed once.
      const waiting = sql`(select distinct on (m.task_id) m.namespace, m.task_id as id, m.queued_state::json as status,
          'infinity'::timestamptz as expires_at,
          coalesce(${sql.id(this.connection.options.schema, 'stem_json_field')}(m.queued_state, 'updatedAt')::float8, 0) as updated_at
        from ${this.table('stem_messages')} m
        where m.namespace = ${this.namespace} and m.queued_state is not null and not exists (
          select 1 from ${stored} r where r.namespace = m.namespace and r.id = m.task_id and r.expires_at > now())
        order by m.task_id, m.id) waiting`;
      scans.push(
        sql`(select status::text as status, ${updatedAt} as updated_at, id collate "C" as id from ${waiting}
          where ${where} order by ${updatedAt} desc, id collate "C" desc limit ${take})`,
      );
    }
    const { rows } = await this.connection.run(() =>
      sql<{ status: string }>`select status from (${sql.join(scans, sql` union all `)}) listed
        order by updated_at desc, id desc limit ${take}`.execute(this.connection.db),
    );
    const tasks = rows.map((row) => JSON.parse(row.status) as TaskStatus);
    if (tasks.length <= resolved.limit) return { tasks };
    tasks.length = resolved.limit;
    return { tasks, cursor: encodeListCursor(tasks[resolved.limit - 1]!) };
  }

  /** Calls `listener` on each later write of `id` from any process; LISTENing before it resolves. */
  async watch(id: string, listener: (status: TaskStatus) => void): Promise<Unsubscribe> {
    this.assertOpen();
    await this.ensureListening();
    return this.watchers.add(id, listener, (unwatched) => this.lastSeen.delete(unwatched));
  }

  /** Creates the group, or starts it over with no results, in one statement. */
  async initGroup(groupId: string, memberIds: readonly string[], options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const members = JSON.stringify([...memberIds]);
    await this.connection.run(() =>
      sql`with cleared as (
          delete from ${this.table('stem_group_results')} where namespace = ${this.namespace} and group_id = ${groupId}
        )
        insert into ${this.table('stem_groups')} (namespace, id, member_ids, expected, completed, expires_at)
        values (${this.namespace}, ${groupId}, ${members}::json, ${memberIds.length}, 0, now() + ${this.ttlOf(options)} * interval
          '1 millisecond')
        on conflict (namespace, id) do update
          set member_ids = excluded.member_ids, expected = excluded.expected, completed = 0, expires_at = excluded.expires_at`.execute(
        this.connection.db,
      ),
    );
  }

  /**
   * Records a member's result (the first record of a member wins) and returns the counts, in one
   * statement. The counter lives on the group row, so concurrent members queue on its row lock
   * and each sees the count including every earlier one: exactly one sees completed = expected.
   */
  async recordGroupResult(groupId: string, status: TaskStatus): Promise<{ completed: number; expected: number }> {
    this.assertOpen();
    const groups = this.table('stem_groups');
    const { rows } = await this.connection.run(() =>
      sql<{ completed: number; expected: number }>`with g as (
          select member_ids from ${groups} where namespace = ${this.namespace} and id = ${groupId} and expires_at > now()
        ),
        recorded as (
          insert into ${this.table('stem_group_results')} (namespace, group_id, member_id, status)
          select ${this.namespace}, ${groupId}, ${status.id}, ${JSON.stringify(status)}::json from g
          where g.member_ids::jsonb ? ${status.id}
          on conflict do nothing
          returning 1
        )
        update ${groups} set completed = completed + (select count(*) from recorded)
        where namespace = ${this.namespace} and id = ${groupId} and expires_at > now()
        returning completed, expected`.execute(this.connection.db),
    );
    const row = rows[0];
    return row === undefined ? { completed: 0, expected: 0 } : { completed: row.completed, expected: row.expected };
  }

  /** The group with results in member order, or null; one query. */
  async getGroup(groupId: string): Promise<GroupStatus | null> {
    this.assertOpen();
    const { rows } = await this.connection.run(() =>
      sql<{ member_ids: string[]; results: Record<string, TaskStatus> | null }>`select g.member_ids,
          (select json_object_agg(r.member_id, r.status) from ${this.table('stem_group_results')} r
            where r.namespace = g.namespace and r.group_id = g.id) as results
        from ${this.table('stem_groups')} g
        where g.namespace = ${this.namespace} and g.id = ${groupId} and g.expires_at > now()`.execute(this.connection.db),
    );
    const row = rows[0];
    if (row === undefined) return null;
    const results = row.results ?? {};
    const ordered = row.member_ids.map((id) => results[id] ?? null);
    return {
      id: groupId,
      memberIds: row.member_ids,
      expected: row.member_ids.length,
      completed: ordered.filter((status) => status !== null).length,
      results: ordered,
    };
  }

  /**
   * One INSERT … ON CONFLICT that wins on a missing or expired row, or takes over a row whose lease
   * ended unfired; concurrent claims serialise on the row, so exactly one wins. A loser reads what
   * holds the claim in a second statement (losing is rare: a duplicate arrival).
   */
  async claimChord(chordId: string, options: ChordClaimOptions = {}): Promise<ChordClaim> {
    this.assertOpen();
    const chords = this.table('stem_chords');
    const leaseEndsAt =
      options.leaseMs === undefined
        ? sql`null::timestamptz`
        : sql`now() + ${Math.max(1, Math.ceil(options.leaseMs))} * interval '1 millisecond'`;
    const { rows } = await this.connection.run(() =>
      sql<{ won: boolean; previous: string | null }>`with prior as (
          select claimer from ${chords} where namespace = ${this.namespace} and id = ${chordId} and expires_at > now()),
        claimed as (
          insert into ${chords} as c (namespace, id, claimer, claimed_at, lease_ends_at, fired, expires_at)
          values (${this.namespace}, ${chordId}, ${options.claimer ?? ''}, now(), ${leaseEndsAt}, false,
            now() + ${this.ttlOf(options)} * interval '1 millisecond')
          on conflict (namespace, id) do update set claimer = excluded.claimer, claimed_at = excluded.claimed_at,
              lease_ends_at = excluded.lease_ends_at, fired = false, expires_at = excluded.expires_at
            where c.expires_at <= now() or (not c.fired and c.lease_ends_at <= now())
          returning 1)
        select exists (select 1 from claimed) as won, (select claimer from prior) as previous`.execute(this.connection.db),
    );
    const { won, previous } = rows[0]!;
    if (won) return previous === null ? { won: true } : { won: true, takenOverFrom: previous };
    const held = await this.connection.run(() =>
      sql<{ claimer: string; fired: boolean; lease_ends_at: number | null }>`select claimer, fired,
          floor(extract(epoch from lease_ends_at) * 1000)::float8 as lease_ends_at
        from ${chords} where namespace = ${this.namespace} and id = ${chordId} and expires_at > now()`.execute(this.connection.db),
    );
    const row = held.rows[0];
    // Gone since the claim (expired in between): nothing to wait for; the next arrival claims afresh.
    if (row === undefined) return { won: false, fired: false };
    const lost: ChordClaim = { won: false, fired: row.fired, claimer: row.claimer };
    if (!row.fired && row.lease_ends_at !== null) lost.leaseEndsAt = row.lease_ends_at;
    return lost;
  }

  /** Marks the claim fired (creating it if it expired), so it is never taken over. */
  async chordFired(chordId: string, options: SetOptions = {}): Promise<void> {
    this.assertOpen();
    const chords = this.table('stem_chords');
    await this.connection.run(() =>
      sql`insert into ${chords} as c (namespace, id, claimed_at, fired, expires_at)
        values (${this.namespace}, ${chordId}, now(), true, now() + ${this.ttlOf(options)} * interval '1 millisecond')
        on conflict (namespace, id) do update set fired = true, expires_at = excluded.expires_at`.execute(this.connection.db),
    );
  }

  /** Records the worker's beat, replacing its previous one. */
  async heartbeat(beat: WorkerHeartbeat, ttlMs: number): Promise<void> {
    this.assertOpen();
    await this.connection.run(() =>
      this.connection.db
        .insertInto('stem_workers')
        .values({
          namespace: this.namespace,
          worker_id: beat.workerId,
          beat: JSON.stringify(beat),
          expires_at: sql<string>`now() + ${Math.max(0, Math.round(ttlMs))} * interval '1 millisecond'`,
        })
        .onConflict((oc) =>
          oc
            .columns(['namespace', 'worker_id'])
            .doUpdateSet((eb) => ({ beat: eb.ref('excluded.beat'), expires_at: eb.ref('excluded.expires_at') })),
        )
        .execute(),
    );
  }

  /** Workers with a live heartbeat, by worker id. */
  async listWorkers(): Promise<WorkerHeartbeat[]> {
    this.assertOpen();
    const rows = await this.connection.run(() =>
      this.connection.db
        .selectFrom('stem_workers')
        .select('beat')
        .where('namespace', '=', this.namespace)
        .where('expires_at', '>', sql<Date>`now()`)
        .orderBy('worker_id')
        .execute(),
    );
    return rows.map((row) => row.beat as WorkerHeartbeat);
  }

  /** Stops watching and the pruning timer. */
  protected override async dispose(): Promise<void> {
    this.watchers.clear();
    this.lastSeen.clear();
    this.stopPrune();
    this.stopReconnect?.();
    const unlisten = await this.listening?.catch(() => undefined);
    await unlisten?.();
  }

  /** Deletes expired states, groups (their results cascade), chord claims and heartbeats. */
  async prune(): Promise<void> {
    const ns = this.namespace;
    await sql`with
        results as (delete from ${this.table('stem_results')} where expires_at <= now() and namespace = ${ns}),
        groups as (delete from ${this.table('stem_groups')} where expires_at <= now() and namespace = ${ns}),
        chords as (delete from ${this.table('stem_chords')} where expires_at <= now() and namespace = ${ns})
      delete from ${this.table('stem_workers')} where expires_at <= now() and namespace = ${ns}`.execute(this.connection.db);
  }

  private ensureListening(): Promise<unknown> {
    if (this.listening === undefined) {
      this.listening = this.connection.listener.listen(this.channel, (payload) => this.onNotification(payload));
      this.listening.catch(() => {
        this.listening = undefined;
      });
      this.stopReconnect = this.connection.listener.onReconnect(() => void this.catchUp());
    }
    return this.listening;
  }

  private onNotification(payload: string): void {
    const newline = payload.indexOf('\n');
    const id = newline < 0 ? payload : payload.slice(0, newline);
    if (!this.watchers.has(id)) return;
    if (newline >= 0) {
      this.emit(id, payload.slice(newline + 1));
      return;
    }
    // Too large for a NOTIFY payload: read it back.
    this.get(id).then(
      (status) => status !== null && this.emit(id, JSON.stringify(status)),
      () => undefined,
    );
  }

  private emit(id: string, json: string): void {
    const listeners = this.watchers.get(id);
    if (listeners === undefined) return;
    this.lastSeen.set(id, json);
    for (const listener of listeners) {
      let status: TaskStatus;
      try {
        status = JSON.parse(json) as TaskStatus;
      } catch {
        return;
      }
      listener(status);
    }
  }

  /** After the LISTEN connection came back: states written meanwhile are read and reported once. */
  private async catchUp(): Promise<void> {
    for (const id of this.watchers.ids()) {
      const status = await this.get(id).catch(() => null);
      if (status === null) continue;
      const json = JSON.stringify(status);
      if (this.lastSeen.get(id) !== json) this.emit(id, json);
    }
  }
}
