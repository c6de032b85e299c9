/**
 * What the task-listing index (#23) costs the enqueue hot path: two source checkouts (`--before`,
 * `--after`: directories holding the repository's sdk/ and plugins/, e.g. `git archive <commit> |
 * tar -x -C DIR` with node_modules linked) enqueue the same no-op tasks, one at a time (awaited) and
 * in batches of 1,000, on Redis and on Postgres; the two alternate within each run and the median
 * of the runs is printed with the difference. Per mode: tasks/s (wall clock), this process's CPU
 * µs per task (user + system) and the server's CPU µs per task. Redis is a server of its own
 * started on a free port (`redis-server` on the PATH, no persistence), so its CPU is ours alone;
 * Postgres is BENCH_POSTGRES_URL (on this machine: the backends' CPU is read from /proc, found by
 * an application_name per checkout) with a schema per checkout, dropped at the end. CPU per task is
 * what to read on a loaded machine: throughput moves with everyone else's load.
 *
 *   npx tsx bench/listing-overhead.ts --before DIR --after DIR [--n 5000] [--bulk-n 20000] [--runs 5] [--only redis,postgres]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { OwnedRedisServer } from '../test/chaos/owned-redis-server.js';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string' },
    n: { type: 'string', default: '5000' },
    'bulk-n': { type: 'string', default: '20000' },
    runs: { type: 'string', default: '5' },
    only: { type: 'string', default: 'redis,postgres' },
  },
});
if (values.before === undefined || values.after === undefined) {
  throw new Error('usage: npx tsx bench/listing-overhead.ts --before DIR --after DIR [--n 5000] [--bulk-n 20000] [--runs 5]');
}
const singleN = Number(values.n);
const bulkN = Number(values['bulk-n']);
const runs = Number(values.runs);
const only = new Set(values.only.split(','));
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

type Side = 'before' | 'after';
type Workload = 'single' | 'bulk';
interface Sample {
  rate: number;
  clientCpu: number;
  serverCpu?: number;
}

/** One checkout's Stem on one store, ready to enqueue. */
interface Subject {
  enqueue(args: unknown): Promise<unknown>;
  enqueueMany(count: number): Promise<unknown>;
  close(): Promise<void>;
}

async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** CPU seconds of the Postgres backends serving `applicationName` (from /proc: same machine). */
async function postgresCpuSeconds(admin: pg.Client, applicationName: string): Promise<number> {
  const { rows } = await admin.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [applicationName]);
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the backend ended meanwhile
    }
  }
  return ticks / 100;
}

async function subject(dir: string, store: 'redis' | 'postgres', url: string, schema: string): Promise<Subject> {
  const sdk = (await import(resolve(dir, 'sdk/index.ts'))) as typeof import('../sdk/index.js');
  const noop = sdk.defineTask({ name: 'bench.noop', handler: () => null });
  let plugin;
  if (store === 'redis') {
    const { redis } = (await import(resolve(dir, 'plugins/redis/index.ts'))) as typeof import('../plugins/redis/index.js');
    plugin = redis({ url, namespace: `listing-${randomBytes(3).toString('hex')}` });
  } else {
    const { postgres } = (await import(resolve(dir, 'plugins/postgres/index.ts'))) as typeof import('../plugins/postgres/index.js');
    plugin = postgres({ url, schema, applicationName: schema });
  }
  const stem = await sdk.Stem.create({ plugins: [plugin], tasks: [noop], defaultQueue: 'bench-listing' });
  return {
    enqueue: (args) => stem.enqueue(noop, args as Record<string, never>),
    enqueueMany: (count) => stem.enqueueMany(Array.from({ length: count }, (_, i) => ({ task: noop, args: { i } }))),
    close: () => stem.close(),
  };
}

/** The server's CPU seconds so far: the private Redis, or the Postgres backends of one side. */
type ServerCpu = (() => Promise<number>) | undefined;

async function measure(target: Subject, workload: Workload, serverCpu: ServerCpu): Promise<Sample> {
  const n = workload === 'single' ? singleN : bulkN;
  const serverBefore = serverCpu === undefined ? 0 : await serverCpu();
  const cpu = process.cpuUsage();
  const started = performance.now();
  if (workload === 'single') for (let i = 0; i < n; i++) await target.enqueue({ i });
  else for (let sent = 0; sent < n; sent += 1000) await target.enqueueMany(Math.min(1000, n - sent));
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const sample: Sample = { rate: (n / elapsed) * 1000, clientCpu: (used.user + used.system) / n };
  if (serverCpu !== undefined) sample.serverCpu = (((await serverCpu()) - serverBefore) * 1e6) / n;
  return sample;
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const rows: string[] = [];
async function compare(store: 'redis' | 'postgres'): Promise<void> {
  let server: OwnedRedisServer | undefined;
  let monitor: Redis | undefined;
  let url = postgresUrl;
  const schemas: Record<Side, string> = {
    before: `bench_listing_before_${randomBytes(3).toString('hex')}`,
    after: `bench_listing_after_${randomBytes(3).toString('hex')}`,
  };
  if (store === 'redis') {
    server = await OwnedRedisServer.start();
    url = server.url;
    monitor = new Redis(url);
  }
  let admin: pg.Client | undefined;
  if (store === 'postgres') {
    admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
  }
  const serverCpuOf = (side: Side): ServerCpu =>
    monitor !== undefined
      ? () => redisCpuSeconds(monitor!)
      : admin !== undefined
        ? () => postgresCpuSeconds(admin!, schemas[side])
        : undefined;
  const subjects: Record<Side, Subject> = {
    before: await subject(values.before!, store, url, schemas.before),
    after: await subject(values.after!, store, url, schemas.after),
  };
  try {
    for (const workload of ['single', 'bulk'] as const) {
      const samples: Record<Side, Sample[]> = { before: [], after: [] };
      // A warm-up of each, then the sides alternate (which goes first alternates too).
      for (const side of ['before', 'after'] as const) await measure(subjects[side], workload, serverCpuOf(side));
      for (let run = 0; run < runs; run++) {
        const order: Side[] = run % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
        for (const side of order) {
          const sample = await measure(subjects[side], workload, serverCpuOf(side));
          samples[side].push(sample);
          console.error(
            `${store} ${workload} run ${run + 1}/${runs} ${side}: ${Math.round(sample.rate)} tasks/s, client ${sample.clientCpu.toFixed(1)} us/task` +
              (sample.serverCpu === undefined ? '' : `, server ${sample.serverCpu.toFixed(1)} us/task`),
          );
        }
      }
      const metrics: Array<[string, (s: Sample) => number | undefined, boolean]> = [
        ['tasks/s', (s) => s.rate, true],
        ['client CPU us/task', (s) => s.clientCpu, false],
        ['server CPU us/task', (s) => s.serverCpu, false],
      ];
      for (const [name, read, higherIsBetter] of metrics) {
        if (read(samples.before[0]!) === undefined) continue;
        const before = median(samples.before.map((s) => read(s)!));
        const after = median(samples.after.map((s) => read(s)!));
        const change = ((after - before) / before) * 100;
        const worse = higherIsBetter ? -change : change;
        rows.push(
          `| ${store} | ${workload === 'single' ? `single enqueue (n=${singleN})` : `bulk of 1,000 (n=${bulkN})`} | ${name} | ` +
            `${before.toFixed(name === 'tasks/s' ? 0 : 1)} | ${after.toFixed(name === 'tasks/s' ? 0 : 1)} | ` +
            `${change >= 0 ? '+' : ''}${change.toFixed(1)}% (${worse > 0 ? 'worse' : 'better'}) |`,
        );
      }
    }
  } finally {
    await subjects.before.close();
    await subjects.after.close();
    monitor?.disconnect();
    await server?.stop();
    if (admin !== undefined) {
      for (const schema of Object.values(schemas)) await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.end();
    }
  }
}

for (const store of ['redis', 'postgres'] as const) if (only.has(store)) await compare(store);
console.log(
  `runs=${runs}, medians; load average ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')}\n`,
);
console.log('| store | workload | metric | before | after | change |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
