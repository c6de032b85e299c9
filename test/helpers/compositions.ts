// The composition matrix: every way a user wires the broker and the result backend, so that the
// end-to-end suites run each of them. A state write that travels on one connection may arrive
// after a newer one sent on another (DESIGN.md §11): only compositions with separate connections
// (and idle workers) show such races, so the suites must not run on one composition alone.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { loadConfig } from '../../cli/config/index.js';
import { canvas } from '../../plugins/canvas/index.js';
import { postgres, postgresBroker, postgresLockStore, postgresRateLimiter, postgresResultBackend } from '../../plugins/postgres/index.js';
import { redis, redisBroker, redisLockStore, redisRateLimiter, redisResultBackend } from '../../plugins/redis/index.js';
import { Stem, type StemPlugin, type TaskDefinition } from '../../sdk/index.js';
import { requirePostgres, testUrl as POSTGRES_URL } from '../postgres/postgres-harness.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { repoRoot } from './run-stem.js';

/** The five legs of the matrix: how the broker and the result backend are provided. */
export const LEGS = ['redis', 'redis-split', 'redis-postgres', 'postgres-redis', 'postgres'] as const;

/** One leg of the matrix. */
export type Leg = (typeof LEGS)[number];

/**
 * How a composition is written: `plugins`, plugin factories in code (`redis({ url })`); `urls`,
 * STEM_BROKER_URL and STEM_RESULT_BACKEND_URL as the CLI reads them (one plugin per service, so
 * broker and backend always have connections of their own, even on one server).
 */
export type Form = 'plugins' | 'urls';

/** The forms every leg is written in. */
export const FORMS: readonly Form[] = ['plugins', 'urls'];

/** What each leg is, for test names and reports. */
export const LEG_TITLES: Record<Leg, string> = {
  redis: 'one Redis server for broker and backend',
  'redis-split': 'Redis broker and Redis backend on two dbs (the seed layout)',
  'redis-postgres': 'Redis broker, Postgres backend',
  'postgres-redis': 'Postgres broker, Redis backend',
  postgres: 'one Postgres database for broker and backend',
};

/** The services each leg needs. */
const LEG_SERVICES: Record<Leg, ReadonlyArray<'redis' | 'postgres'>> = {
  redis: ['redis'],
  'redis-split': ['redis'],
  'redis-postgres': ['redis', 'postgres'],
  'postgres-redis': ['redis', 'postgres'],
  postgres: ['postgres'],
};

/** The test Redis URL with another db index: the backend's db in the split leg (15 → 14, 0 → 1). */
export function otherRedisDb(url: string = REDIS_URL): string {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.replace(/^\//, '') || '0');
  parsed.pathname = `/${db === 0 ? 1 : db - 1}`;
  return parsed.toString();
}

/** Everything that places one composition: the servers, and the namespace and schema no other test uses. */
export interface CompositionParams {
  leg: Leg;
  /** The broker's Redis (and the backend's on one-server legs). */
  redisUrl: string;
  /** The backend's Redis on the split leg, the only Redis of the Postgres-broker leg. */
  backendRedisUrl: string;
  postgresUrl: string;
  /** The Redis key prefix. */
  namespace: string;
  /** The Postgres schema. */
  schema: string;
}

/** Adds `?key=value` options to a service URL (the CLI reads `namespace` and `schema` from them). */
function withQuery(url: string, options: Record<string, string>): string {
  const query = new URLSearchParams(options).toString();
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

/** The broker and backend URLs of a composition, as STEM_BROKER_URL and STEM_RESULT_BACKEND_URL. */
export function compositionUrls(params: CompositionParams): { broker: string; backend: string } {
  const redisAt = (url: string) => withQuery(url, { namespace: params.namespace });
  const postgresAt = withQuery(params.postgresUrl, { schema: params.schema });
  switch (params.leg) {
    case 'redis':
      return { broker: redisAt(params.redisUrl), backend: redisAt(params.redisUrl) };
    case 'redis-split':
      return { broker: redisAt(params.redisUrl), backend: redisAt(params.backendRedisUrl) };
    case 'redis-postgres':
      return { broker: redisAt(params.redisUrl), backend: postgresAt };
    case 'postgres-redis':
      return { broker: postgresAt, backend: redisAt(params.backendRedisUrl) };
    case 'postgres':
      return { broker: postgresAt, backend: postgresAt };
  }
}

/**
 * The plugins of a composition in code, at each plugin's defaults (users' timings: an idle Redis
 * consumer blocks 5 s, a Postgres one polls each second). The broker's server also holds the lock
 * store and rate limiter, as the CLI wires a broker URL.
 */
export function compositionPlugins(params: CompositionParams): StemPlugin[] {
  const { namespace, schema } = params;
  const redisAt = (url: string) => ({ url, namespace });
  const postgresAt = { url: params.postgresUrl, schema };
  const redisBrokerSide = [
    redisBroker(redisAt(params.redisUrl)),
    redisLockStore(redisAt(params.redisUrl)),
    redisRateLimiter(redisAt(params.redisUrl)),
  ];
  const postgresBrokerSide = [postgresBroker(postgresAt), postgresLockStore(postgresAt), postgresRateLimiter(postgresAt)];
  switch (params.leg) {
    case 'redis':
      return [redis(redisAt(params.redisUrl))];
    case 'redis-split':
      return [...redisBrokerSide, redisResultBackend(redisAt(params.backendRedisUrl))];
    case 'redis-postgres':
      return [...redisBrokerSide, postgresResultBackend(postgresAt)];
    case 'postgres-redis':
      return [...postgresBrokerSide, redisResultBackend(redisAt(params.backendRedisUrl))];
    case 'postgres':
      return [postgres(postgresAt)];
  }
}

/** The variable that carries a composition to the matrix config file of a `stem` child process. */
export const COMPOSITION_VARIABLE = 'STEM_MATRIX_COMPOSITION';

/** The plugins named by STEM_MATRIX_COMPOSITION (JSON of {@link CompositionParams}), none when it is unset. */
export function compositionPluginsFromEnv(env: NodeJS.ProcessEnv = process.env): StemPlugin[] {
  const value = env[COMPOSITION_VARIABLE];
  return value ? compositionPlugins(JSON.parse(value) as CompositionParams) : [];
}

/** The config file of the matrix's `stem` processes: the matrix tasks, canvas(), and the plugins form from the environment. */
export const MATRIX_CONFIG = fileURLToPath(new URL('../matrix/fixtures/matrix.config.ts', import.meta.url));

/** One composition, opened: Stems on it, the environment of `stem` processes on it, and a cleanup. */
export interface Composition {
  leg: Leg;
  form: Form;
  /** `leg/form`, for test names. */
  label: string;
  params: CompositionParams;
  /**
   * A new Stem on this composition with its own connections (another "process"), knowing the
   * matrix tasks plus `tasks`, with canvas(). Closed by {@link close}.
   */
  create(tasks?: TaskDefinition[]): Promise<Stem>;
  /**
   * The environment of a `stem` child process on this composition: STEM_BROKER_URL and
   * STEM_RESULT_BACKEND_URL (urls), or the matrix config file with its plugins (plugins). Either
   * way STEM_CONFIG names the matrix config, which holds the tasks.
   */
  cliEnv: NodeJS.ProcessEnv;
  /**
   * Resolves once a worker on this composition is idle and blocked waiting for work (Redis: a
   * consumer connection in a blocking XREADGROUP/XREAD; Postgres: LISTENing, no query of the schema
   * running). The race of issue 16 shows only against such a worker.
   */
  waitForIdleConsumer(timeoutMs?: number): Promise<void>;
  /** Closes every Stem made by {@link create} and deletes the namespace's keys and the schema. */
  close(): Promise<void>;
}

/** A namespace (and schema) of its own for one composition. */
function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** The defaults of a composition's params: the test Redis (and its neighbour db) and the test Postgres. */
export function newParams(leg: Leg, label = 'matrix'): CompositionParams {
  const suffix = uniqueSuffix();
  return {
    leg,
    redisUrl: REDIS_URL,
    backendRedisUrl: otherRedisDb(REDIS_URL),
    postgresUrl: POSTGRES_URL,
    namespace: `stemtest-${label}-${suffix}`,
    schema: `stem_${label.replace(/[^a-z0-9_]/gi, '_')}_${suffix}`,
  };
}

/** Opens `leg` in `form`; nothing is connected until {@link Composition.create} or a child process. */
export function openComposition(leg: Leg, form: Form, params: CompositionParams = newParams(leg)): Composition {
  const stems: Stem[] = [];
  const urls = compositionUrls(params);
  const brokerOnPostgres = leg === 'postgres' || leg === 'postgres-redis';
  const cliEnv: NodeJS.ProcessEnv =
    form === 'urls'
      ? { STEM_CONFIG: MATRIX_CONFIG, STEM_BROKER_URL: urls.broker, STEM_RESULT_BACKEND_URL: urls.backend, [COMPOSITION_VARIABLE]: '' }
      : { STEM_CONFIG: MATRIX_CONFIG, STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '', [COMPOSITION_VARIABLE]: JSON.stringify(params) };
  return {
    leg,
    form,
    label: `${leg}/${form}`,
    params,
    cliEnv,
    async create(tasks = []) {
      // The urls form goes through loadConfig, exactly as every `stem` command builds its Stem.
      // The config file's own plugin objects are loaded once per process: each Stem gets a fresh canvas().
      const config =
        form === 'urls'
          ? await loadConfig({
              cwd: repoRoot,
              configFile: MATRIX_CONFIG,
              env: { STEM_BROKER_URL: urls.broker, STEM_RESULT_BACKEND_URL: urls.backend },
            })
          : { plugins: compositionPlugins(params), tasks: (await import('../matrix/fixtures/matrix-tasks.js')).matrixTasks };
      const plugins = [...(config.plugins ?? []).filter((plugin) => plugin.name !== 'canvas'), canvas()];
      const stem = await Stem.create({ ...config, plugins, tasks: [...(config.tasks ?? []), ...tasks] });
      stems.push(stem);
      return stem;
    },
    async waitForIdleConsumer(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      const probe = brokerOnPostgres ? postgresConsumerIdle(params) : redisConsumerBlocked(params);
      while (!(await probe())) {
        if (Date.now() > deadline) throw new Error(`${leg}/${form}: no worker was idle and waiting for work within ${timeoutMs}ms`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async close() {
      for (const stem of stems.splice(0).reverse()) await stem.close().catch(() => undefined);
      await dropComposition(params);
    },
  };
}

/** A probe: does a consumer of this namespace sit in a blocking read on the broker's Redis? */
function redisConsumerBlocked(params: CompositionParams): () => Promise<boolean> {
  const consumerName = new RegExp(`^stem:${params.namespace.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:consumer:[^:]+$`);
  return async () => {
    const client = await plainRedis(params.redisUrl);
    try {
      const list = (await client.call('CLIENT', 'LIST')) as string;
      return list.split('\n').some((line) => {
        const fields = Object.fromEntries(line.split(' ').map((pair) => pair.split('=', 2) as [string, string]));
        // The task consumer's own connection (`…:consumer:<worker>`), not the control plugin's broadcast one (`…:control`).
        return (
          consumerName.test(fields.name ?? '') &&
          (fields.cmd === 'xreadgroup' || fields.cmd === 'xread') &&
          (fields.flags ?? '').includes('b')
        );
      });
    } finally {
      client.disconnect();
    }
  };
}

/** A probe: does a consumer LISTEN for this schema's broker channel, with no query of the schema running? */
function postgresConsumerIdle(params: CompositionParams): () => Promise<boolean> {
  return async () => {
    const client = await plainPostgres(params.postgresUrl);
    try {
      const { rows } = await client.query<{ listening: number; active: number }>(
        `SELECT count(*) FILTER (WHERE query LIKE $1 AND state = 'idle')::int AS listening,
                count(*) FILTER (WHERE state <> 'idle' AND query LIKE $2 AND query NOT LIKE 'LISTEN%')::int AS active
           FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()`,
        [`LISTEN "${params.schema}:%`, `%${params.schema}%`],
      );
      return rows[0]!.listening > 0 && rows[0]!.active === 0;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}

async function plainRedis(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function plainPostgres(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Deletes a composition's keys on both Redis dbs and drops its schema. */
export async function dropComposition(params: CompositionParams): Promise<void> {
  if (LEG_SERVICES[params.leg].includes('redis')) {
    for (const url of new Set([params.redisUrl, params.backendRedisUrl])) {
      const client = await plainRedis(url);
      try {
        for (const pattern of [`${params.namespace}:*`, `{${params.namespace}:*`]) {
          let cursor = '0';
          do {
            const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await client.del(...keys);
          } while (cursor !== '0');
        }
      } finally {
        client.disconnect();
      }
    }
  }
  if (LEG_SERVICES[params.leg].includes('postgres')) {
    const client = await plainPostgres(params.postgresUrl);
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${params.schema}" CASCADE`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/**
 * Whether the servers `leg` needs answer. When one does not, the leg's tests cannot run: with
 * CI=true that fails the test, otherwise it is skipped loudly (the helpers of each service decide).
 */
export async function legAvailable(t: Test, leg: Leg): Promise<boolean> {
  for (const service of LEG_SERVICES[leg]) {
    if (service === 'redis' && !(await requireRedis(t))) return false;
    if (service === 'postgres' && !(await requirePostgres(t))) return false;
  }
  return true;
}

/**
 * Yields `leg` in each form, opened, closed at the end of the test `t`. Use:
 * `for (const composition of await compositionsOf(t, 'redis')) t.test(composition.label, …)`.
 */
export async function compositionsOf(t: Test, leg: Leg, forms: readonly Form[] = FORMS): Promise<Composition[]> {
  if (!(await legAvailable(t, leg))) return [];
  return forms.map((form) => {
    const composition = openComposition(leg, form, newParams(leg, `mx-${leg}-${form}`));
    t.teardown(() => composition.close());
    return composition;
  });
}
