import { sql } from 'kysely';
import type { ConcurrencyControl, ConcurrencyKeyStats } from '../../sdk/contracts/concurrency-control.js';
import type { PostgresConnection } from './postgres-connection.js';

/**
 * Per-key concurrency on Postgres (docs/flow-control.md). Enforced by the claim itself
 * (postgres-consumer.ts): of each key, only the first `limit` rows in enqueue order may be leased,
 * so a row that is acked, dropped or dead-lettered (deleted) frees its slot, a leased row whose
 * worker died frees it when its lease runs out and it is claimed again, and a retry (updated in
 * place, keeping its row) keeps its turn. This class holds the run-time limits and the counts.
 */
export class PostgresConcurrency implements ConcurrencyControl {
  /**
   * @param connection the broker's connection
   * @param channel the broker's NOTIFY channel: a raised limit wakes idle consumers of the queue
   */
  constructor(
    private readonly connection: PostgresConnection,
    private readonly channel: string,
  ) {}

  /** Sets or clears a key's run-time limit and wakes the queue's idle consumers. */
  async setLimit(queue: string, key: string, limit: number | null): Promise<void> {
    const { schema, namespace } = this.connection.options;
    const limits = sql.table(`${schema}.stem_concurrency_limits`);
    await this.connection.run(() =>
      limit === null
        ? sql`with gone as (delete from ${limits} where namespace = ${namespace} and queue = ${queue} and key = ${key} returning queue)
            select pg_notify(${this.channel}, queue) from gone`.execute(this.connection.db)
        : sql`with set as (
              insert into ${limits} (namespace, queue, key, limit_value) values (${namespace}, ${queue}, ${key}, ${limit})
              on conflict (namespace, queue, key) do update set limit_value = excluded.limit_value
              returning queue
            )
            select pg_notify(${this.channel}, queue) from set`.execute(this.connection.db),
    );
  }

  /** Each key of a queue with rows, or with a run-time limit: rows leased, rows waiting (a retry waiting for its turn included). */
  async stats(queue: string): Promise<ConcurrencyKeyStats[]> {
    const { schema, namespace } = this.connection.options;
    const messages = sql.table(`${schema}.stem_messages`);
    const limits = sql.table(`${schema}.stem_concurrency_limits`);
    const { rows } = await this.connection.run(() =>
      sql<{ key: string; running: number; waiting: number; limit: number }>`with counts as (
          select concurrency_key as key, max(concurrency_limit) as lim,
            count(*) filter (where locked_until > now()) as running,
            count(*) filter (where locked_until is null or locked_until <= now()) as waiting
          from ${messages}
          where namespace = ${namespace} and subscriber = '' and queue = ${queue} and concurrency_key is not null
          group by concurrency_key
        )
        select coalesce(c.key, l.key) as key, coalesce(c.running, 0)::int as running, coalesce(c.waiting, 0)::int as waiting,
          coalesce(l.limit_value, c.lim, 1)::int as "limit"
        from counts c
        full join (select key, limit_value from ${limits} where namespace = ${namespace} and queue = ${queue}) l on l.key = c.key
        order by 1`.execute(this.connection.db),
    );
    return rows;
  }
}
