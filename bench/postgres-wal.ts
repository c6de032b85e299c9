/**
 * `npx tsx bench/postgres-wal.ts [n]`: what one task costs Postgres in WAL, a number that does not
 * depend on the machine's CPU load: WAL bytes per task for bulk enqueue, single enqueue and
 * processing, with results stored and with `ignoreResult`; then the dead tuples the run left.
 * The WAL position is the server's: run it on a server nothing else writes to (on a shared one,
 * other writers' WAL is counted too). Findings: docs/benchmarks.md.
 */
import pg from 'pg';
import { defineTask, Stem, type EnqueueOptions } from '../sdk/index.js';
import { postgres } from '../plugins/postgres/index.js';

const url = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const n = Number(process.argv[2] ?? 5_000);
const schema = `bench_wal_${process.pid}`;

const admin = new pg.Pool({ connectionString: url, max: 2 });

/** The server's WAL insert position. */
async function mark(): Promise<string> {
  const { rows } = await admin.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
  return rows[0]!.lsn;
}

async function since(start: string, tasks: number, what: string): Promise<void> {
  const { rows } = await admin.query<{ bytes: string }>('select pg_wal_lsn_diff($1, $2) as bytes', [await mark(), start]);
  console.log(`${what.padEnd(44)} ${(Number(rows[0]!.bytes) / tasks).toFixed(0).padStart(6)} WAL bytes/task`);
}

const noop = defineTask({ name: 'wal.noop', options: { queue: 'wal' }, handler: async (args: { i: number }) => args.i });

async function main(): Promise<void> {
  const stem = await Stem.create({ plugins: [postgres({ url, schema })], tasks: [noop] });
  try {
    for (const ignoreResult of [false, true]) {
      const options: EnqueueOptions = ignoreResult ? { ignoreResult: true } : {};
      const label = ignoreResult ? 'ignoreResult' : 'results stored';
      await stem.enqueue(noop, { i: -1 }, options); // the queue name is recorded once
      let start = await mark();
      for (let i = 0; i < n; i += 1_000) {
        await stem.enqueueMany(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ task: noop, args: { i: i + k }, options })));
      }
      await since(start, n, `bulk enqueue (1,000 a call), ${label}`);
      start = await mark();
      const single = Math.min(n, 1_000);
      for (let i = 0; i < single; i++) await stem.enqueue(noop, { i }, options);
      await since(start, single, `single enqueue, ${label}`);
      await new Promise((resolve) => setTimeout(resolve, 600));
      start = await mark();
      const worker = stem.worker({ queues: ['wal'], concurrency: 100 });
      await worker.start();
      const total = n + single + 1;
      while ((await stem.broker.pending('wal')) + (await stem.broker.inflight('wal')) > 0) await new Promise((r) => setTimeout(r, 20));
      await worker.stop();
      await new Promise((resolve) => setTimeout(resolve, 600));
      await since(start, total, `process (concurrency 100), ${label}`);
    }
    const { rows } = await admin.query<{ relname: string; n_live_tup: string; n_dead_tup: string }>(
      `select relname, n_live_tup, n_dead_tup from pg_stat_user_tables where schemaname = $1 and n_live_tup + n_dead_tup > 0 order by relname`,
      [schema],
    );
    console.log(`\ndead tuples left (${rows.map((row) => `${row.relname}: ${row.n_dead_tup} dead / ${row.n_live_tup} live`).join('; ')})`);
    const settings = await admin.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('autovacuum', 'synchronous_commit', 'shared_buffers', 'wal_level') order by name`,
    );
    console.log(`server: ${settings.rows.map((row) => `${row.name}=${row.setting}`).join(', ')}`);
  } finally {
    await stem.close();
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  }
}

await main();
