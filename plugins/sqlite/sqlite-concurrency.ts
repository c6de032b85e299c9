import type { ConcurrencyControl, ConcurrencyKeyStats } from '../../sdk/contracts/concurrency-control.js';
import type { SqliteConnection } from './sqlite-connection.js';

/** A keyed row a claim may take now: free, due, and among the first `limit` rows of its key. */
export interface KeyedCandidate {
  id: number;
  priority: number;
}

/** The first key of a queue, then the next one after a key: a loose index scan of `stem_messages_keyed`. */
const FIRST_KEY = `select concurrency_key from stem_messages
  where namespace = ? and queue = ? and concurrency_key is not null order by concurrency_key limit 1`;
const NEXT_KEY = `select concurrency_key from stem_messages
  where namespace = ? and queue = ? and concurrency_key > ? order by concurrency_key limit 1`;
const OVERRIDE = 'select limit_value from stem_concurrency_limits where namespace = ? and queue = ? and key = ?';
/** The limit the newest task of a key carries (the newest publish wins, as on Postgres). */
const NEWEST_LIMIT = `select json_extract(payload, '$.headers."stem-concurrency-limit"') from stem_messages
  where namespace = ? and queue = ? and concurrency_key = ? order by id desc limit 1`;
const TURNS = `select id, priority, not_before, locked_until from stem_messages
  where namespace = ? and queue = ? and concurrency_key = ? order by id limit ?`;

/** A limit header as the memory and Redis brokers read it: a whole number of 1 or more, else 1. */
function limitOf(value: unknown): number {
  const limit = Number(value ?? '1');
  return Number.isInteger(limit) && limit >= 1 ? limit : 1;
}

/**
 * Per-key concurrency on SQLite (docs/flow-control.md). Enforced by the claim itself, inside its
 * `BEGIN IMMEDIATE` transaction (SQLite has one writer at a time, so what a claim counts is what
 * every process sees): of each key, only the first `limit` rows in enqueue order may be leased. A
 * row that is acked, dropped or dead-lettered (deleted) frees its slot; a leased row whose worker
 * died frees it when its lease runs out and it is claimed again; a retry (updated in place,
 * keeping its row) keeps its turn. This class holds the run-time limits and the counts, and finds
 * the keyed rows a claim may take.
 */
export class SqliteConcurrency implements ConcurrencyControl {
  /**
   * @param connection the broker's connection
   * @param namespace the broker's namespace
   */
  constructor(
    private readonly connection: SqliteConnection,
    private readonly namespace: string,
  ) {}

  /** Sets or clears a key's run-time limit and wakes the idle consumers of this process (others see the commit). */
  async setLimit(queue: string, key: string, limit: number | null): Promise<void> {
    const connection = this.connection;
    connection.immediate(() => {
      if (limit === null) {
        connection
          .prepare('delete from stem_concurrency_limits where namespace = ? and queue = ? and key = ?')
          .run(this.namespace, queue, key);
      } else {
        connection
          .prepare(
            `insert into stem_concurrency_limits (namespace, queue, key, limit_value) values (?, ?, ?, ?)
            on conflict (namespace, queue, key) do update set limit_value = excluded.limit_value`,
          )
          .run(this.namespace, queue, key, limit);
      }
    });
    connection.monitor.announce();
  }

  /** Each key of a queue with rows, or with a run-time limit: rows leased, rows waiting (a retry waiting for its turn included). */
  async stats(queue: string): Promise<ConcurrencyKeyStats[]> {
    const connection = this.connection;
    const now = Date.now();
    const counts = connection
      .prepare(
        `select concurrency_key as key,
          sum(case when locked_until > ? then 1 else 0 end) as running,
          sum(case when locked_until is null or locked_until <= ? then 1 else 0 end) as waiting
        from stem_messages where namespace = ? and queue = ? and concurrency_key is not null
        group by concurrency_key`,
      )
      .all(now, now, this.namespace, queue) as Array<{ key: string; running: number; waiting: number }>;
    const overrides = new Map(
      (
        connection
          .prepare('select key, limit_value from stem_concurrency_limits where namespace = ? and queue = ?')
          .all(this.namespace, queue) as Array<{ key: string; limit_value: number }>
      ).map((row) => [row.key, row.limit_value]),
    );
    const byKey = new Map<string, ConcurrencyKeyStats>();
    for (const { key, running, waiting } of counts) {
      byKey.set(key, { key, running, waiting, limit: overrides.get(key) ?? this.carriedLimit(queue, key) });
    }
    for (const [key, limit] of overrides) if (!byKey.has(key)) byKey.set(key, { key, running: 0, waiting: 0, limit });
    return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * The keyed rows of `queue` a claim may take at `now` (call it inside the claim's transaction):
   * for each key, its first `limit` rows in enqueue order (the run-time limit, else the newest
   * row's), of which the free and due ones. Leased, delayed and retrying rows among those first
   * rows keep their turn.
   */
  candidates(queue: string, now: number): KeyedCandidate[] {
    const connection = this.connection;
    const first = connection.prepare(FIRST_KEY).pluck();
    const next = connection.prepare(NEXT_KEY).pluck();
    const override = connection.prepare(OVERRIDE).pluck();
    const turns = connection.prepare(TURNS);
    const out: KeyedCandidate[] = [];
    let key = first.get(this.namespace, queue) as string | undefined;
    while (key !== undefined && key !== null) {
      const limit = (override.get(this.namespace, queue, key) as number | undefined) ?? this.carriedLimit(queue, key);
      const rows = turns.all(this.namespace, queue, key, limit) as Array<{
        id: number;
        priority: number;
        not_before: number;
        locked_until: number | null;
      }>;
      for (const row of rows) {
        if (row.not_before <= now && (row.locked_until === null || row.locked_until <= now))
          out.push({ id: row.id, priority: row.priority });
      }
      key = next.get(this.namespace, queue, key) as string | undefined;
    }
    return out;
  }

  private carriedLimit(queue: string, key: string): number {
    return limitOf(this.connection.prepare(NEWEST_LIMIT).pluck().get(this.namespace, queue, key));
  }
}
