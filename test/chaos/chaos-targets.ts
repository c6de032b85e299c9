import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StemPlugin } from '../../sdk/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { QUEUE_GROUP, QueueKeys } from '../../plugins/redis/queue-keys.js';
import { OwnedPostgresServer } from './owned-postgres-server.js';
import { OwnedRedisServer, type RedisPersistence } from './owned-redis-server.js';

/** One run of a handler, as the side table recorded it. */
export interface RecordedRun {
  taskId: string;
  pid: number;
  /** Epoch ms the handler started and finished (same machine, same clock as the harness). */
  startedAt: number;
  doneAt: number;
}

/** How a server restart takes the server down. */
export type RestartHow = 'sigterm' | 'sigkill' | 'immediate';

/** Where the workers of one chaos scenario run, and the faults that can be done to it. */
export interface ChaosTarget {
  /** `redis` or `postgres`. */
  readonly backend: 'redis' | 'postgres';
  /** The queue the tasks go to. */
  readonly queue: string;
  /** Environment of every worker process. */
  workerEnv(): Record<string, string>;
  /** The plugins of the harness's own (short-lived) producer. */
  producerPlugins(): StemPlugin[];
  /** How many distinct tasks have run to the end at least once. */
  completedCount(): Promise<number>;
  /** Every recorded run. */
  runs(): Promise<RecordedRun[]>;
  /** True when nothing waits in or is leased from the queue. */
  queueEmpty(): Promise<boolean>;
  /** Dead letters of the queue. */
  deadLetters(): Promise<number>;
  /** Drops every worker connection to the server (CLIENT KILL / pg_terminate_backend); returns how many. */
  killConnections(): Promise<number>;
  /** The ids of the tasks delivered to a worker and not yet acknowledged (leased / pending). */
  inFlight(): Promise<string[]>;
  /**
   * Restarts the server the queue lives on (an owned one): Redis with SIGTERM or SIGKILL, Postgres
   * with `-m immediate`. Returns the ids of the tasks that were in flight when it went down, read
   * from the restarted server before any worker can reach it again.
   */
  restartServer?(how: RestartHow, downMs: number): Promise<string[]>;
  /** Removes what the scenario made: keys, schema, the owned server. */
  cleanup(): Promise<void>;
}

/** The shared test Redis: it holds only the side table of the Redis scenarios. */
export const SIDE_REDIS_URL = process.env.STEM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
/** The test Postgres. */
export const CHAOS_POSTGRES_URL = process.env.STEM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Redis: the broker and backend live on a redis-server the harness owns (its own port), so that
 * killing connections and restarting cannot touch anything else; the side table lives on the
 * shared test Redis, which no fault touches.
 */
export class RedisChaosTarget implements ChaosTarget {
  readonly backend = 'redis' as const;
  readonly queue = 'chaos';
  private readonly runsKey: string;
  private readonly doneKey: string;
  private readonly keys: QueueKeys;

  private constructor(
    private readonly server: OwnedRedisServer,
    private readonly side: Redis,
    private admin: Redis,
    private readonly namespace: string,
  ) {
    this.runsKey = `${namespace}:runs`;
    this.doneKey = `${namespace}:done`;
    this.keys = new QueueKeys(namespace, this.queue);
  }

  /** Starts the owned server (on `port`, default a free one, persisting as asked) and connects the side table. */
  static async open(port?: number, persistence: RedisPersistence = 'none'): Promise<RedisChaosTarget> {
    const server = await OwnedRedisServer.start(port, persistence);
    const side = new Redis(SIDE_REDIS_URL, { connectionName: 'chaos-side' });
    side.on('error', () => undefined);
    return new RedisChaosTarget(server, side, adminOf(server), `stemchaos-${randomBytes(4).toString('hex')}`);
  }

  workerEnv(): Record<string, string> {
    return {
      CHAOS_BACKEND: 'redis',
      CHAOS_URL: this.server.url,
      CHAOS_NAMESPACE: this.namespace,
      CHAOS_QUEUE: this.queue,
      CHAOS_RECORD_URL: SIDE_REDIS_URL,
      CHAOS_RUNS_KEY: this.runsKey,
      CHAOS_DONE_KEY: this.doneKey,
    };
  }

  producerPlugins(): StemPlugin[] {
    return [redis({ url: this.server.url, namespace: this.namespace })];
  }

  async completedCount(): Promise<number> {
    return this.side.hlen(this.doneKey);
  }

  async runs(): Promise<RecordedRun[]> {
    const lines = await this.side.lrange(this.runsKey, 0, -1);
    return lines.map((line) => {
      const [taskId, pid, startedAt, doneAt] = line.split(' ');
      return { taskId: taskId!, pid: Number(pid), startedAt: Number(startedAt), doneAt: Number(doneAt) };
    });
  }

  async inFlight(admin = this.admin): Promise<string[]> {
    const ids: string[] = [];
    for (const stream of this.keys.streams) {
      const pending = (await admin.xpending(stream, QUEUE_GROUP, '-', '+', 100_000).catch(() => [])) as Array<[string, ...unknown[]]>;
      if (pending.length === 0) continue;
      const pipeline = admin.pipeline();
      for (const [entryId] of pending) pipeline.xrange(stream, entryId, entryId);
      for (const [error, entries] of (await pipeline.exec()) ?? []) {
        const fields = (entries as Array<[string, string[]]> | undefined)?.[0]?.[1];
        const json = fields?.[fields.indexOf('e') + 1];
        if (!error && json !== undefined) ids.push((JSON.parse(json) as { id: string }).id);
      }
    }
    return ids;
  }

  async queueEmpty(): Promise<boolean> {
    const pipeline = this.admin.pipeline();
    for (const stream of this.keys.streams) pipeline.xlen(stream);
    pipeline.zcard(this.keys.delayed);
    const replies = (await pipeline.exec()) ?? [];
    return replies.every(([error, count]) => !error && count === 0);
  }

  async deadLetters(): Promise<number> {
    return this.admin.hlen(this.keys.deadLetters);
  }

  async killConnections(): Promise<number> {
    const list = (await this.admin.call('CLIENT', 'LIST')) as string;
    let killed = 0;
    for (const line of list.split('\n')) {
      const id = /\bid=(\d+)/.exec(line)?.[1];
      const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
      if (id !== undefined && name.startsWith(`stem:${this.namespace}`))
        killed += Number(await this.admin.call('CLIENT', 'KILL', 'ID', id));
    }
    return killed;
  }

  async restartServer(how: RestartHow, downMs: number): Promise<string[]> {
    this.admin.disconnect();
    let inFlight: string[] = [];
    await this.server.restart(downMs, how === 'sigterm' ? 'sigterm' : 'sigkill', async (url) => {
      const hidden = new Redis(url, { connectionName: 'chaos-admin' });
      hidden.on('error', () => undefined);
      try {
        inFlight = await this.inFlight(hidden);
      } finally {
        hidden.disconnect();
      }
    });
    this.admin = adminOf(this.server);
    return inFlight;
  }

  async cleanup(): Promise<void> {
    this.admin.disconnect();
    await this.server.stop();
    await this.side.del(this.runsKey, this.doneKey).catch(() => undefined);
    this.side.disconnect();
  }
}

function adminOf(server: OwnedRedisServer): Redis {
  const admin = new Redis(server.url, { connectionName: 'chaos-admin' });
  admin.on('error', () => undefined);
  return admin;
}

/**
 * Postgres: a schema of its own, on the test database or (`owned`) on a cluster the harness makes
 * with initdb on a free port, so that it can be restarted without touching the shared server.
 * Workers connect with an application name of their own, which is how pg_terminate_backend finds
 * them. The side table (`chaos_runs`) always lives on the shared test database, in a schema of the
 * same name, written by a pool with another application name: no fault touches it.
 */
export class PostgresChaosTarget implements ChaosTarget {
  readonly backend = 'postgres' as const;
  readonly queue = 'chaos';
  readonly schema = `stem_chaos_${randomBytes(4).toString('hex')}`;
  private readonly app = `stem-chaos-${randomBytes(3).toString('hex')}`;
  private readonly side = new pg.Pool({ connectionString: CHAOS_POSTGRES_URL, max: 2, application_name: 'chaos-side' });
  private readonly admin: pg.Pool;

  private constructor(
    private readonly url: string,
    private readonly server: OwnedPostgresServer | undefined,
  ) {
    this.side.on('error', () => undefined);
    this.admin = new pg.Pool({ connectionString: url, max: 2, application_name: 'chaos-admin' });
    this.admin.on('error', () => undefined);
  }

  /** Creates the schema (the plugin's migrations) and the side table; `owned` starts a cluster of its own first. */
  static async open(owned = false): Promise<PostgresChaosTarget> {
    const server = owned ? await OwnedPostgresServer.start() : undefined;
    const target = new PostgresChaosTarget(server?.url ?? CHAOS_POSTGRES_URL, server);
    try {
      await runMigrations(target.url, target.schema);
      await target.side.query(`create schema if not exists "${target.schema}"`);
      await target.side.query(
        `create table "${target.schema}".chaos_runs (task_id text not null, pid integer not null, started_at bigint not null, done_at bigint not null)`,
      );
    } catch (error) {
      await target.cleanup();
      throw error;
    }
    return target;
  }

  workerEnv(): Record<string, string> {
    return {
      CHAOS_BACKEND: 'postgres',
      CHAOS_URL: this.url,
      CHAOS_RECORD_URL: CHAOS_POSTGRES_URL,
      CHAOS_SCHEMA: this.schema,
      CHAOS_APP: this.app,
      CHAOS_QUEUE: this.queue,
    };
  }

  producerPlugins(): StemPlugin[] {
    return [postgres({ url: this.url, schema: this.schema, migrate: false, poolSize: 4 })];
  }

  async completedCount(): Promise<number> {
    const { rows } = await this.side.query<{ n: string }>(`select count(distinct task_id) as n from "${this.schema}".chaos_runs`);
    return Number(rows[0]!.n);
  }

  async runs(): Promise<RecordedRun[]> {
    const { rows } = await this.side.query<{ task_id: string; pid: number; started_at: string; done_at: string }>(
      `select task_id, pid, started_at, done_at from "${this.schema}".chaos_runs`,
    );
    return rows.map((row) => ({ taskId: row.task_id, pid: row.pid, startedAt: Number(row.started_at), doneAt: Number(row.done_at) }));
  }

  async queueEmpty(): Promise<boolean> {
    const { rows } = await this.admin.query<{ n: string }>(`select count(*) as n from "${this.schema}".stem_messages where queue = $1`, [
      this.queue,
    ]);
    return Number(rows[0]!.n) === 0;
  }

  async deadLetters(): Promise<number> {
    const { rows } = await this.admin.query<{ n: string }>(
      `select count(*) as n from "${this.schema}".stem_dead_letters where queue = $1`,
      [this.queue],
    );
    return Number(rows[0]!.n);
  }

  async inFlight(admin: pg.Pool | pg.Client = this.admin): Promise<string[]> {
    const { rows } = await admin.query<{ task_id: string }>(
      `select task_id from "${this.schema}".stem_messages where queue = $1 and locked_until is not null`,
      [this.queue],
    );
    return rows.map((row) => row.task_id);
  }

  async killConnections(): Promise<number> {
    const { rows } = await this.admin.query<{ n: string }>(
      `select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity where application_name like $1 and pid <> pg_backend_pid()`,
      [`${this.app}%`],
    );
    return Number(rows[0]!.n);
  }

  async restartServer(how: RestartHow): Promise<string[]> {
    if (this.server === undefined || how !== 'immediate') throw new Error('only an owned Postgres cluster is restarted, with -m immediate');
    let inFlight: string[] = [];
    await this.server.restartImmediate(async (url) => {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      await client.connect();
      try {
        inFlight = await this.inFlight(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    return inFlight;
  }

  async cleanup(): Promise<void> {
    if (this.server === undefined) await this.admin.query(`drop schema if exists "${this.schema}" cascade`).catch(() => undefined);
    await this.admin.end().catch(() => undefined);
    await this.side.query(`drop schema if exists "${this.schema}" cascade`).catch(() => undefined);
    await this.side.end().catch(() => undefined);
    await this.server?.stop();
  }
}
