import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metrics, trace } from '@opentelemetry/api';
import t, { type Test } from 'tap';
import { loadConfig } from '../../cli/config/index.js';
import { beat } from '../../plugins/beat/index.js';
import { control } from '../../plugins/control/index.js';
import { createDashboard } from '../../plugins/dashboard/index.js';
import { events } from '../../plugins/events/index.js';
import { isolation } from '../../plugins/isolation/index.js';
import {
  postgres,
  postgresBroker,
  postgresLockStore,
  postgresRateLimiter,
  postgresResultBackend,
  postgresRevokeStore,
  postgresScheduleStore,
  postgresWorkflowStore,
} from '../../plugins/postgres/index.js';
import { rateLimit, setRateLimit } from '../../plugins/rate-limit/index.js';
import {
  redis,
  redisBroker,
  redisLockStore,
  redisRateLimiter,
  redisResultBackend,
  redisRevokeStore,
  redisScheduleStore,
  redisWorkflowStore,
} from '../../plugins/redis/index.js';
import { revoke, revokeTask } from '../../plugins/revoke/index.js';
import { routing } from '../../plugins/routing/index.js';
import { signing } from '../../plugins/signing/index.js';
import {
  sqlite,
  sqliteBroker,
  sqliteFallback,
  sqliteLockStore,
  sqliteRateLimiter,
  sqliteResultBackend,
  sqliteRevokeStore,
  sqliteScheduleStore,
  sqliteWorkflowStore,
} from '../../plugins/sqlite/index.js';
import { telemetry } from '../../plugins/telemetry/index.js';
import { debounce, unique } from '../../plugins/unique/index.js';
import { defineWorkflow, workflows, workflowsOf } from '../../plugins/workflows/index.js';
import { ConfigError, Stem } from '../../sdk/index.js';
import { assertKnownOptions } from '../../sdk/option-keys.js';

// Every check runs when the factory is called: the servers these URLs name do not exist (port 1),
// so a factory that connected before refusing would fail with another error, or hang.
const REDIS_URL = 'redis://127.0.0.1:1/0';
const POSTGRES_URL = 'postgres://nobody@127.0.0.1:1/none';

/** Options in any shape: these tests pass what the types would refuse. */
type AnyOptions = Record<string, unknown>;

/** One factory: how to call it, options that use every key it knows (together, every key), and a misspelling. */
interface FactoryCase {
  factory: string;
  call: (options: AnyOptions) => unknown;
  /** Each object is valid; between them they hold every known key (some keys exclude others). */
  accepted: AnyOptions[];
  /** A key the factory does not know, and the known key it should suggest. */
  typo: [string, string];
}

const redisConnection = {
  url: REDIS_URL,
  namespace: 'unknown-options',
  connectTimeoutMs: 100,
  username: 'app',
  password: 'secret',
  tls: false,
};
const redisTopologies = [{ cluster: { nodes: ['127.0.0.1:1'] } }, { sentinel: { sentinels: ['127.0.0.1:1'], name: 'mymaster' } }];
const redisBrokerOwn = { blockMs: 100, defaultVisibilityTimeoutMs: 1_000, broadcastMaxLen: 10, promoteBatch: 10 };
const redisBackendOwn = { resultTtlMs: 1_000, listQueued: true };
const postgresAll = {
  url: POSTGRES_URL,
  schema: 'unknown_options',
  namespace: 'unknown-options',
  poolSize: 1,
  connectTimeoutMs: 100,
  pollIntervalMs: 100,
  resultTtlMs: 1_000,
  migrate: false,
  applicationName: 'unknown-options',
  ssl: false,
};
const sqliteAll = [
  { url: 'sqlite::memory:', namespace: 'unknown-options', busyTimeoutMs: 100, pollIntervalMs: 10, resultTtlMs: 1_000, migrate: false },
  { path: ':memory:' },
];

const cases: FactoryCase[] = [
  {
    factory: 'redis',
    call: (o) => redis(o),
    accepted: [{ ...redisConnection, ...redisBrokerOwn, ...redisBackendOwn }, ...redisTopologies],
    typo: ['urll', 'url'],
  },
  {
    factory: 'redisBroker',
    call: (o) => redisBroker(o),
    accepted: [{ ...redisConnection, ...redisBrokerOwn }, ...redisTopologies],
    typo: ['blockMS', 'blockMs'],
  },
  {
    factory: 'redisResultBackend',
    call: (o) => redisResultBackend(o),
    accepted: [{ ...redisConnection, ...redisBackendOwn }, ...redisTopologies],
    typo: ['resultTTLMs', 'resultTtlMs'],
  },
  ...(
    [
      ['redisRevokeStore', redisRevokeStore],
      ['redisRateLimiter', redisRateLimiter],
      ['redisScheduleStore', redisScheduleStore],
      ['redisWorkflowStore', redisWorkflowStore],
      ['redisLockStore', redisLockStore],
    ] as const
  ).map(([factory, make]) => ({
    factory,
    call: (o: AnyOptions) => make(o),
    accepted: [redisConnection, ...redisTopologies],
    typo: ['namespce', 'namespace'] as [string, string],
  })),
  ...(
    [
      ['postgres', postgres],
      ['postgresBroker', postgresBroker],
      ['postgresResultBackend', postgresResultBackend],
      ['postgresRevokeStore', postgresRevokeStore],
      ['postgresScheduleStore', postgresScheduleStore],
      ['postgresWorkflowStore', postgresWorkflowStore],
      ['postgresLockStore', postgresLockStore],
      ['postgresRateLimiter', postgresRateLimiter],
    ] as const
  ).map(([factory, make]) => ({
    factory,
    call: (o: AnyOptions) => make(o as never),
    accepted: [postgresAll],
    typo: ['shcema', 'schema'] as [string, string],
  })),
  ...(
    [
      ['sqlite', sqlite],
      ['sqliteFallback', sqliteFallback],
      ['sqliteBroker', sqliteBroker],
      ['sqliteResultBackend', sqliteResultBackend],
      ['sqliteRevokeStore', sqliteRevokeStore],
      ['sqliteScheduleStore', sqliteScheduleStore],
      ['sqliteWorkflowStore', sqliteWorkflowStore],
      ['sqliteLockStore', sqliteLockStore],
      ['sqliteRateLimiter', sqliteRateLimiter],
    ] as const
  ).map(([factory, make]) => ({
    factory,
    call: (o: AnyOptions) => make(o as never),
    accepted: sqliteAll,
    typo: ['busyTimeout', 'busyTimeoutMs'] as [string, string],
  })),
  {
    factory: 'beat',
    call: (o) => beat(o),
    accepted: [
      {
        tick: '1s',
        lockTtl: '30s',
        batchSize: 10,
        owner: 'unknown-options',
        schedules: [],
        onFiring: () => undefined,
        onError: () => undefined,
        now: Date.now,
        random: Math.random,
        autoStart: false,
      },
    ],
    typo: ['autostart', 'autoStart'],
  },
  { factory: 'control', call: (o) => control(o), accepted: [{ namespace: 'ops' }], typo: ['namspace', 'namespace'] },
  { factory: 'events', call: (o) => events(o), accepted: [{ all: true }], typo: ['al', 'all'] },
  {
    factory: 'isolation',
    call: (o) => isolation(o),
    accepted: [
      {
        pool: 'threads',
        modules: [],
        setup: [],
        min: 0,
        max: 1,
        maxTasksPerChild: 10,
        maxMemoryPerChild: '256MB',
        abortGrace: 0,
        execArgv: [],
        threadHeapLimitMb: 64,
        tagOutput: false,
      },
    ],
    typo: ['maxTaskPerChild', 'maxTasksPerChild'],
  },
  {
    factory: 'rateLimit',
    call: (o) => rateLimit(o),
    accepted: [{ namespace: 'ops', tenantHeader: false }],
    typo: ['tenantheader', 'tenantHeader'],
  },
  {
    factory: 'revoke',
    call: (o) => revoke(o),
    accepted: [{ namespace: 'ops', syncInterval: '1s' }],
    typo: ['syncIntervall', 'syncInterval'],
  },
  {
    factory: 'routing',
    call: (o) => routing(o),
    accepted: [{ file: fileURLToPath(new URL('../../fixtures/routing.yaml', import.meta.url)), checkTasks: false }, { config: {} }],
    typo: ['fil', 'file'],
  },
  {
    factory: 'signing',
    call: (o) => signing({ keys: { k1: randomBytes(32).toString('base64') }, ...o } as never),
    accepted: [{ keys: { k1: randomBytes(32).toString('base64') }, activeKey: 'k1', algorithm: 'hmac-sha256' }],
    typo: ['activekey', 'activeKey'],
  },
  { factory: 'unique', call: (o) => unique(o), accepted: [{ keyPrefix: 'u' }], typo: ['keyprefix', 'keyPrefix'] },
  { factory: 'debounce', call: (o) => debounce(o), accepted: [{ keyPrefix: 'd' }], typo: ['prefix', 'keyPrefix'] },
  {
    factory: 'workflows',
    call: (o) => workflows(o),
    accepted: [{ definitions: [], lease: '1s', eventBufferTtl: '1h', advanceOptions: {} }],
    typo: ['defintions', 'definitions'],
  },
  {
    factory: 'telemetry',
    call: (o) => telemetry(o),
    accepted: [{ tracerProvider: trace.getTracerProvider(), meterProvider: metrics.getMeterProvider(), parentOnCreation: true }],
    typo: ['parentOnCreate', 'parentOnCreation'],
  },
];

/** The factory's known keys, as its error lists them. */
function knownKeys(error: unknown): string[] {
  const match = /; known options: (.*)$/.exec((error as Error).message);
  return match === null ? [] : match[1]!.split(', ');
}

function throwsUnknown(t: Test, call: () => unknown, pattern: RegExp): unknown {
  let caught: unknown;
  try {
    call();
  } catch (error) {
    caught = error;
  }
  t.type(caught, ConfigError, 'a ConfigError');
  t.match((caught as Error | undefined)?.message, pattern);
  t.notMatch((caught as Error | undefined)?.message, /\n/, 'on one line');
  return caught;
}

for (const { factory, call, accepted, typo } of cases) {
  t.test(`${factory}() refuses an unknown option when called, naming it and the known one it resembles`, async (t) => {
    const [wrong, meant] = typo;
    const error = throwsUnknown(
      t,
      () => call({ ...accepted[0], [wrong]: 1 }),
      new RegExp(`^${factory}\\(\\): unknown option "${wrong}" \\(did you mean "${meant}"\\?\\); known options: .*\\b${meant}\\b`),
    );
    t.match((error as ConfigError | undefined)?.code, 'config');
    t.test('and accepts every option it knows', async (t) => {
      for (const options of accepted) t.doesNotThrow(() => call(options), `${factory}(${Object.keys(options).join(', ')})`);
      const covered = new Set(accepted.flatMap((options) => Object.keys(options)));
      t.same(
        knownKeys(error).filter((key) => !covered.has(key)),
        [],
        'these cases use every key the factory lists',
      );
    });
  });
}

t.test('createDashboard() refuses an unknown option and accepts the ones it knows', async (t) => {
  const stem = await Stem.create();
  t.teardown(() => stem.close());
  const error = throwsUnknown(
    t,
    () => createDashboard(stem, { basePath: '/stem', readonly: true } as never),
    /^createDashboard\(\): unknown option "readonly" \(did you mean "readOnly"\?\); known options: /,
  );
  const options = { basePath: '/stem', token: 'a-long-token', readOnly: true, controls: {}, allowedHosts: ['localhost'] };
  const dashboard = createDashboard(stem, options);
  await dashboard.close();
  t.same(knownKeys(error).sort(), Object.keys(options).sort());
});

t.test('a single-service factory refuses the options of another service', async (t) => {
  throwsUnknown(
    t,
    () => redisRevokeStore({ url: REDIS_URL, blockMs: 100 } as never),
    /^redisRevokeStore\(\): unknown option "blockMs"; known/,
  );
  throwsUnknown(
    t,
    () => redisBroker({ url: REDIS_URL, resultTtlMs: 100 } as never),
    /^redisBroker\(\): unknown option "resultTtlMs"; known/,
  );
});

t.test('the message names every unknown key, suggests only a near one, and ignores letter case for the suggestion', async (t) => {
  const known = { url: true, schema: true, connectTimeoutMs: true } as const;
  t.throws(() => assertKnownOptions('demo()', { URL: 'x', bogus: 1, schema: 's' }, known), {
    message: 'demo(): unknown options "URL" (did you mean "url"?), "bogus"; known options: url, schema, connectTimeoutMs',
  });
  t.throws(() => assertKnownOptions('demo()', { connectTimeout: 5 }, known), {
    message: /"connectTimeout" \(did you mean "connectTimeoutMs"\?\)/,
  });
  t.throws(() => assertKnownOptions('demo()', { timeout: 5 }, known), { message: /"timeout" \(did you mean "connectTimeoutMs"\?\)/ });
  t.throws(() => assertKnownOptions('demo()', { shcema: undefined }, known), { message: /"shcema" \(did you mean "schema"\?\)/ });
  t.doesNotThrow(() => assertKnownOptions('demo()', undefined, known), 'no options at all');
  t.doesNotThrow(() => assertKnownOptions('demo()', { url: 'x', schema: undefined }, known), 'known keys, some undefined');
});

t.test('Stem.create() refuses a config key it does not know, and takes what loadConfig() adds', async (t) => {
  await t.rejects(Stem.create({ plugin: [redis({ url: REDIS_URL })] } as never), {
    constructor: ConfigError,
    message: /^Stem\.create\(\): unknown option "plugin" \(did you mean "plugins"\?\); known options: plugins, tasks, /,
  });
  await t.rejects(Stem.create({ resultTTL: '1h' } as never), { message: /unknown option "resultTTL" \(did you mean "resultTtl"\?\)/ });
  const stem = await Stem.create({
    defaultQueue: 'q',
    urls: {},
    configPath: '/app/stem.config.ts',
    routingConfig: 'routing.yaml',
  } as never);
  await stem.close();
});

t.test('a config file with a key StemConfig does not have fails to load, naming the file', async (t) => {
  const dir = t.testdir({ '.stemrc.json': JSON.stringify({ defaultQueue: 'q', namspace: 'billing' }) });
  const file = join(dir, '.stemrc.json');
  await t.rejects(loadConfig({ configFile: file, cwd: dir, env: {} }), {
    constructor: ConfigError,
    message:
      `${file}: unknown option "namspace" (did you mean "namespace"?); known options: plugins, tasks, defaultQueue, resultTtl, ` +
      'visibilityTimeout, worker, trackQueued, extendedResults, maxArgsBytes, maxRedeliveries, namespace, commands',
  });
  writeFileSync(file, JSON.stringify({ defaultQueue: 'q', namespace: 'billing' }));
  t.equal((await loadConfig({ configFile: file, cwd: dir, env: {} })).namespace, 'billing');
});

t.test('stem.worker() refuses a worker option, or an autoscale option, it does not know', async (t) => {
  const stem = await Stem.create();
  t.teardown(() => stem.close());
  const error = throwsUnknown(
    t,
    () => stem.worker({ concurency: 2 } as never),
    /^stem\.worker\(\): unknown option "concurency" \(did you mean "concurrency"\?\); known options: queues, /,
  );
  const autoscaleError = throwsUnknown(
    t,
    () => stem.worker({ autoscale: { min: 1, max: 2, idleafter: '1s' } } as never),
    /^stem\.worker\(\): option "autoscale": unknown option "idleafter" \(did you mean "idleAfter"\?\); known options: min, max, /,
  );
  const autoscale = { min: 1, max: 2, backlogPerSlot: 1, idleAfter: '1s', interval: '1s', upCooldown: '1s' };
  const options = {
    queues: ['q'],
    broadcasts: ['b'],
    prefetchMultiplier: 1,
    id: 'unknown-options-worker',
    hostname: 'h',
    shutdownGrace: '1s',
    heartbeatInterval: '1s',
    autoscale,
    events: false,
  };
  t.doesNotThrow(() => stem.worker(options), 'every worker option');
  t.doesNotThrow(() => stem.worker({ concurrency: 2 }), 'concurrency (not with autoscale)');
  t.same(knownKeys(error).sort(), [...Object.keys(options), 'concurrency'].sort(), 'the cases use every key listed');
  t.same(knownKeys(autoscaleError).sort(), Object.keys(autoscale).sort());
});

t.test("the config's worker options are checked by Stem.create() and by the config loader", async (t) => {
  await t.rejects(Stem.create({ worker: { concurency: 2 } } as never), {
    constructor: ConfigError,
    message: /^Stem\.create\(\): option "worker": unknown option "concurency" \(did you mean "concurrency"\?\); known options: /,
  });
  const dir = t.testdir({ '.stemrc.json': JSON.stringify({ worker: { queues: ['q'], prefetchMultiplyer: 2 } }) });
  const file = join(dir, '.stemrc.json');
  await t.rejects(loadConfig({ configFile: file, cwd: dir, env: {} }), {
    constructor: ConfigError,
    message: `${file}: option "worker": unknown option "prefetchMultiplyer" (did you mean "prefetchMultiplier"?); known options: queues, broadcasts, concurrency, prefetchMultiplier, id, hostname, shutdownGrace, heartbeatInterval, autoscale, events`,
  });
  const stem = await Stem.create({ worker: { concurrency: 2, queues: ['q'] } });
  await stem.close();
});

t.test('revokeTask(), setRateLimit() and workflows start() refuse an option they do not know', async (t) => {
  const flow = defineWorkflow({ name: 'unknown-options.flow', run: async () => 1 });
  const stem = await Stem.create({ plugins: [workflows({ definitions: [flow] })] });
  t.teardown(() => stem.close());
  const revokeOptions = { terminate: false, reason: 'r', namespace: 'unknown-options', retention: '1m' };
  const revokeError = await rejectsUnknown(
    t,
    revokeTask(stem, 'task-1', { terminat: true } as never),
    /^revokeTask\(\): unknown option "terminat" \(did you mean "terminate"\?\); known options: /,
  );
  t.same(await stem.service('revokeStore').list(stem.settings.namespace), [], 'nothing revoked');
  t.equal((await revokeTask(stem, 'task-1', revokeOptions)).length, 1, 'every revokeTask option');
  t.same(knownKeys(revokeError).sort(), Object.keys(revokeOptions).sort());

  const rateError = await rejectsUnknown(
    t,
    setRateLimit(stem, 'unknown-options.task', '1/s', { namepsace: 'x' } as never),
    /^setRateLimit\(\): unknown option "namepsace" \(did you mean "namespace"\?\); known options: namespace$/,
  );
  await setRateLimit(stem, 'unknown-options.task', '1/s', { namespace: 'unknown-options' });
  t.same(knownKeys(rateError), ['namespace']);

  const runs = workflowsOf(stem);
  const startError = await rejectsUnknown(
    t,
    runs.start(flow, {}, { queu: 'q' } as never),
    /^workflowsOf\(stem\)\.start\(\): unknown option "queu" \(did you mean "queue"\?\); known options: id, queue$/,
  );
  t.same(await runs.list(), [], 'no run started');
  t.equal((await runs.start(flow, {}, { id: 'run-1', queue: 'q' })).id, 'run-1', 'every start option');
  t.same(knownKeys(startError).sort(), ['id', 'queue']);
});

async function rejectsUnknown(t: Test, promise: Promise<unknown>, pattern: RegExp): Promise<unknown> {
  const caught = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  t.type(caught, ConfigError, 'a ConfigError');
  t.match((caught as Error | undefined)?.message, pattern);
  t.notMatch((caught as Error | undefined)?.message, /\n/, 'on one line');
  return caught;
}
