import { Redis } from 'ioredis';
import pg from 'pg';
import { FLOOR_PREFIX } from './systems/floor-system.js';
import {
  BULLMQ_PREFIX,
  GRAPHILE_SCHEMA,
  PG_FLOOR_MODEL_SCHEMA,
  PG_FLOOR_SCHEMA,
  PGBOSS_SCHEMA,
  STEM_NAMESPACE,
  STEM_SCHEMA,
} from './systems/bench-system.js';

/** The key patterns of each system on Redis (Stem's queue keys start with a `{ns:queue}` hash tag). */
export const REDIS_PATTERNS = {
  stem: [`${STEM_NAMESPACE}:*`, `{${STEM_NAMESPACE}:*`],
  bullmq: [`${BULLMQ_PREFIX}:*`],
  floor: [`${FLOOR_PREFIX}:*`],
} as const;

/** Which system's keys. */
export type RedisOwner = keyof typeof REDIS_PATTERNS;

/** Deletes the keys matching `patterns` on the Redis at `url` (SCAN and UNLINK, never FLUSHDB). */
export async function deleteKeys(url: string, patterns: readonly string[]): Promise<void> {
  const client = new Redis(url);
  try {
    for (const pattern of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}

/** Drops `schema` (if it exists) on the Postgres at `url`. */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

/**
 * The benchmark's view of the servers: removes only the benchmark's keys and schemas, measures
 * the memory of its keys, and checks that a run left what it should.
 */
export class BenchStorage {
  /** Whether this run cleaned (so used) the Redis keys, and the Postgres schemas, of the benchmark. */
  usedRedis = false;
  usedPostgres = false;

  private constructor(
    readonly redis: Redis,
    readonly pool: pg.Pool,
  ) {}

  static async open(redisUrl: string, postgresUrl: string): Promise<BenchStorage> {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
    const pool = new pg.Pool({ connectionString: postgresUrl, max: 2 });
    await pool.query('select 1');
    return new BenchStorage(redis, pool);
  }

  /** Every key of `owner` on the benchmark's db. */
  async keys(owner: RedisOwner): Promise<string[]> {
    const found: string[] = [];
    for (const pattern of REDIS_PATTERNS[owner]) {
      let cursor = '0';
      do {
        const [next, batch] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
        cursor = next;
        found.push(...batch);
      } while (cursor !== '0');
    }
    return found;
  }

  /** Deletes every key of the benchmark (both systems). */
  async flushRedis(): Promise<void> {
    this.usedRedis = true;
    for (const owner of Object.keys(REDIS_PATTERNS) as RedisOwner[]) {
      const keys = await this.keys(owner);
      for (let i = 0; i < keys.length; i += 1_000) await this.redis.unlink(...keys.slice(i, i + 1_000));
    }
  }

  /** Bytes of `owner`'s keys by MEMORY USAGE (SAMPLES 0: every element counted). */
  async memoryOf(owner: RedisOwner): Promise<{ bytes: number; keys: number }> {
    const keys = await this.keys(owner);
    let bytes = 0;
    for (let i = 0; i < keys.length; i += 1_000) {
      const pipeline = this.redis.pipeline();
      for (const key of keys.slice(i, i + 1_000)) pipeline.memory('USAGE', key, 'SAMPLES', 0);
      for (const [error, reply] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        bytes += Number(reply ?? 0);
      }
    }
    return { bytes, keys: keys.length };
  }

  /** How many of Stem's task states on Redis read `succeeded`. */
  async stemRedisSucceeded(): Promise<number> {
    const keys = (await this.keys('stem')).filter((key) => key.startsWith(`${STEM_NAMESPACE}:task:`));
    let succeeded = 0;
    for (let i = 0; i < keys.length; i += 1_000) {
      const values = await this.redis.mget(...keys.slice(i, i + 1_000));
      for (const value of values) if (value !== null && (JSON.parse(value) as { state: string }).state === 'succeeded') succeeded++;
    }
    return succeeded;
  }

  /** How many of the floor's results read `succeeded`. */
  async floorSucceeded(): Promise<number> {
    const keys = (await this.keys('floor')).filter((key) => key.startsWith(`${FLOOR_PREFIX}:res:`));
    let succeeded = 0;
    for (let i = 0; i < keys.length; i += 1_000)
      for (const value of await this.redis.mget(...keys.slice(i, i + 1_000))) if (value?.includes('"succeeded"')) succeeded++;
    return succeeded;
  }

  /** How many BullMQ jobs are kept as completed. */
  async bullmqCompleted(): Promise<number> {
    return this.redis.zcard(`${BULLMQ_PREFIX}:bench:completed`);
  }

  /** Drops the benchmark's schemas (before a run, to start clean, and after it). */
  async dropSchemas(): Promise<void> {
    this.usedPostgres = true;
    await this.pool.query(`drop schema if exists ${STEM_SCHEMA} cascade`);
    await this.pool.query(`drop schema if exists ${GRAPHILE_SCHEMA} cascade`);
    await this.pool.query(`drop schema if exists ${PGBOSS_SCHEMA} cascade`);
    await this.pool.query(`drop schema if exists ${PG_FLOOR_SCHEMA} cascade`);
    await this.pool.query(`drop schema if exists ${PG_FLOOR_MODEL_SCHEMA} cascade`);
  }

  /** Empties the queue and result tables of both systems. */
  async flushPostgres(): Promise<void> {
    // TRUNCATE rather than DELETE: each run starts both systems on tables without the dead rows
    // of the previous runs (which would slow whichever system autovacuum had not reached yet).
    await this.pool.query(`truncate ${STEM_SCHEMA}.stem_messages, ${STEM_SCHEMA}.stem_results`);
    await this.pool.query(`truncate ${GRAPHILE_SCHEMA}._private_jobs`);
    // pg-boss's tables exist once its first process started (job is partitioned by queue).
    const { rows } = await this.pool.query<{ name: string | null }>(`select to_regclass('${PGBOSS_SCHEMA}.job')::text as name`);
    if (rows[0]?.name) await this.pool.query(`truncate ${PGBOSS_SCHEMA}.job, ${PGBOSS_SCHEMA}.archive`);
    const floor = await this.pool.query<{ name: string | null }>(`select to_regclass('${PG_FLOOR_SCHEMA}.jobs')::text as name`);
    if (floor.rows[0]?.name) await this.pool.query(`truncate ${PG_FLOOR_SCHEMA}.jobs, ${PG_FLOOR_SCHEMA}.results`);
    const model = await this.pool.query<{ name: string | null }>(
      `select to_regclass('${PG_FLOOR_MODEL_SCHEMA}.stem_messages')::text as name`,
    );
    if (model.rows[0]?.name)
      await this.pool.query(`truncate ${PG_FLOOR_MODEL_SCHEMA}.stem_messages, ${PG_FLOOR_MODEL_SCHEMA}.stem_results`);
  }

  /** Dead tuples per table of the benchmark's schemas (pg_stat_user_tables), largest first: what autovacuum has left. */
  async deadTuples(): Promise<Array<{ table: string; live: number; dead: number; autovacuums: number }>> {
    const { rows } = await this.pool.query<{ table: string; live: string; dead: string; autovacuums: string }>(
      `select schemaname || '.' || relname as table, n_live_tup as live, n_dead_tup as dead, autovacuum_count as autovacuums
       from pg_stat_user_tables where schemaname = any($1) and n_dead_tup + n_live_tup > 0 order by n_dead_tup desc`,
      [[STEM_SCHEMA, GRAPHILE_SCHEMA, PGBOSS_SCHEMA, PG_FLOOR_SCHEMA, PG_FLOOR_MODEL_SCHEMA]],
    );
    return rows.map((row) => ({ table: row.table, live: Number(row.live), dead: Number(row.dead), autovacuums: Number(row.autovacuums) }));
  }

  /** How many of Stem's task states on Postgres read `succeeded`. */
  async stemPostgresSucceeded(): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(`select count(*) from ${STEM_SCHEMA}.stem_results where state = 'succeeded'`);
    return Number(rows[0]?.count ?? 0);
  }

  /** Server versions, for the report. */
  async versions(): Promise<{ redis: string; postgres: string }> {
    const info = await this.redis.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    const { rows } = await this.pool.query<{ server_version: string }>('show server_version');
    return { redis: redisVersion, postgres: rows[0]?.server_version ?? '?' };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    await this.pool.end();
  }
}
