import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cli } from 'clipanion';
import { PassThrough } from 'node:stream';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import t from 'tap';
import { ConfigError, ServiceUnavailableError } from '../../sdk/errors.js';
import { Stem } from '../../sdk/index.js';
import {
  MigrateCommand,
  PostgresBroker,
  postgres,
  postgresBroker,
  postgresResultBackend,
  runMigrations,
} from '../../plugins/postgres/index.js';
import { SchemaMigrations } from '../../plugins/postgres/migrations/index.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

const EXPECTED_TABLES = [
  'kysely_migration',
  'kysely_migration_lock',
  'stem_chords',
  'stem_concurrency_limits',
  'stem_dead_letters',
  'stem_group_results',
  'stem_groups',
  'stem_locks',
  'stem_messages',
  'stem_queues',
  'stem_rate_buckets',
  'stem_results',
  'stem_revokes',
  'stem_schedules',
  'stem_subscriptions',
  'stem_workers',
  'stem_workflow_checkpoints',
  'stem_workflow_events',
  'stem_workflow_runs',
  'stem_workflow_waiters',
];

/** Every migration, in the order they run. */
const MIGRATIONS = [
  '2025-11-29-01-broker',
  '2025-11-29-02-result-backend',
  '2025-11-29-03-stores',
  '2026-11-29-04-hot-updates',
  '2026-11-30-05-state-order',
  '2026-11-30-06-chord-leases',
  '2026-11-30-07-concurrency-keys',
  '2026-11-30-08-task-listing',
  '2026-11-30-09-workflows',
  '2026-11-30-10-queued-in-message',
  '2026-11-30-11-listing-without-unescape',
];

const pluginIndex = fileURLToPath(new URL('../../plugins/postgres/index.ts', import.meta.url));

/** Runs runMigrations in a child process (node --import tsx), resolving to its exit code and output. */
function migrateInChild(schema: string): Promise<{ code: number; output: string }> {
  const script = `const { runMigrations } = await import(${JSON.stringify(pluginIndex)});
    const applied = await runMigrations(${JSON.stringify(testUrl)}, ${JSON.stringify(schema)});
    console.log(JSON.stringify(applied));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: stdout + stderr });
    });
  });
}

async function tablesOf(schema: string): Promise<string[]> {
  const { rows } = await adminQuery<{ table_name: string }>(
    'select table_name from information_schema.tables where table_schema = $1 order by table_name',
    [schema],
  );
  return rows.map((row) => row.table_name);
}

if (await requirePostgres(t)) {
  t.test('two processes applying the migrations at once both succeed and leave one schema', async (t) => {
    const schema = uniqueSchema('race');
    t.teardown(() => dropSchema(schema));
    const [first, second] = await Promise.all([migrateInChild(schema), migrateInChild(schema)]);
    t.equal(first.code, 0, first.output);
    t.equal(second.code, 0, second.output);
    const applied = [JSON.parse(first.output.trim()) as string[], JSON.parse(second.output.trim()) as string[]];
    t.same(
      applied.map((names) => names.length).sort(),
      [0, MIGRATIONS.length],
      'one applied every migration, the other found nothing to do',
    );
    t.same(await tablesOf(schema), EXPECTED_TABLES);
    const { rows } = await adminQuery<{ name: string }>(`select name from "${schema}".kysely_migration order by name`);
    t.same(
      rows.map((row) => row.name),
      MIGRATIONS,
      'each migration recorded once',
    );
  });

  t.test('migrations are idempotent: a second run applies nothing and changes nothing', async (t) => {
    const schema = uniqueSchema('again');
    t.teardown(() => dropSchema(schema));
    t.equal((await runMigrations(testUrl, schema)).length, MIGRATIONS.length);
    t.same(await runMigrations(testUrl, schema), []);
    t.same(await tablesOf(schema), EXPECTED_TABLES);
  });

  t.test('every table has a namespace column', async (t) => {
    const schema = uniqueSchema('columns');
    t.teardown(() => dropSchema(schema));
    await runMigrations(testUrl, schema);
    const { rows } = await adminQuery<{ table_name: string }>(
      `select t.table_name from information_schema.tables t
       where t.table_schema = $1 and t.table_name like 'stem\\_%'
         and not exists (select 1 from information_schema.columns c
                         where c.table_schema = t.table_schema and c.table_name = t.table_name and c.column_name = 'namespace')`,
      [schema],
    );
    t.same(rows, [], 'no stem_ table lacks it');
  });

  t.test('migration 11 on a schema with rows: updated_at backfilled, a concurrency key lost to a NUL read again', async (t) => {
    const schema = uniqueSchema('rows11');
    t.teardown(() => dropSchema(schema));
    const pool = new pg.Pool({ connectionString: testUrl, max: 1 });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    try {
      await adminQuery(`create schema "${schema}"`);
      const migrator = new Migrator({ db, provider: new SchemaMigrations(schema), migrationTableSchema: schema });
      const { error } = await migrator.migrateTo('2026-11-30-10-queued-in-message');
      t.equal(error, undefined);
    } finally {
      await db.destroy();
    }
    const status = { id: 't1', state: 'succeeded', name: 'n', attempt: 0, updatedAt: 1_234_567 };
    await adminQuery(
      `insert into "${schema}".stem_results (namespace, id, state, status, expires_at)
        values ('ns', 't1', 'succeeded', $1, now() + interval '1 hour')`,
      [JSON.stringify(status)],
    );
    const payload = JSON.stringify({ id: 't2', name: 'n', headers: { 'stem-concurrency-key': 'k' }, args: { text: 'a\u0000b' } });
    await adminQuery(`insert into "${schema}".stem_messages (namespace, queue, task_id, payload) values ('ns', 'q', 't2', $1)`, [payload]);
    const key = async () =>
      (await adminQuery<{ k: string | null }>(`select concurrency_key as k from "${schema}".stem_messages where task_id = 't2'`)).rows[0]!
        .k;
    t.equal(await key(), null, 'before: the key of a payload holding NUL was lost');
    t.same(await runMigrations(testUrl, schema), ['2026-11-30-11-listing-without-unescape']);
    const { rows } = await adminQuery<{ updated_at: number }>(`select updated_at from "${schema}".stem_results where id = 't1'`);
    t.equal(rows[0]!.updated_at, 1_234_567, 'updated_at backfilled from the status');
    t.equal(await key(), 'k', 'after: the key is read');
    const index = await adminQuery<{ def: string }>(
      `select indexdef as def from pg_indexes where schemaname = $1 and indexname = 'stem_results_listing'`,
      [schema],
    );
    t.match(index.rows[0]!.def, /\(namespace, state, updated_at, id COLLATE "C"\) WHERE \(state <> 'queued'::text\)/);
  });

  t.test('the plugin migrates on start: a broker on a new schema works at once', async (t) => {
    const schema = uniqueSchema('start');
    t.teardown(() => dropSchema(schema));
    const broker = await PostgresBroker.connect({ url: testUrl, schema });
    t.same(await broker.listQueues(), []);
    await broker.close();
    t.same(await tablesOf(schema), EXPECTED_TABLES);
  });

  t.test('stem migrate applies the migrations and says so; a second run is up to date', async (t) => {
    const schema = uniqueSchema('cli');
    t.teardown(() => dropSchema(schema));
    const run = async (args: string[]): Promise<{ code: number; out: string }> => {
      const cli = new Cli({ binaryName: 'stem' });
      cli.register(MigrateCommand);
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      stdout.on('data', (chunk) => (out += chunk));
      stderr.on('data', (chunk) => (out += chunk));
      const code = await cli.run(args, { stdin: process.stdin, stdout, stderr });
      return { code, out };
    };
    const first = await run(['migrate', '--url', testUrl, '--schema', schema]);
    t.equal(first.code, 0, first.out);
    t.match(first.out, `applied ${MIGRATIONS.join(', ')}`);
    const second = await run(['migrate', '--url', testUrl, '--schema', schema]);
    t.equal(second.code, 0);
    t.match(second.out, /already up to date/);
    const down = await run(['migrate', '--url', 'postgres://postgres:hunter2@127.0.0.1:1/test', '--schema', schema]);
    t.equal(down.code, 69, 'an unreachable server exits 69');
    t.notMatch(down.out, /hunter2/, 'the password is not printed');
    t.ok(MigrateCommand.usage?.examples?.length, 'usage has examples');
  });

  t.test('options are checked when the factory is called, naming the option', async (t) => {
    t.throws(() => postgres({ url: 'mysql://localhost/db' }), { name: 'ConfigError', message: /option "url"/ });
    t.throws(() => postgres({ url: 42 as unknown as string }), ConfigError);
    t.throws(() => postgresBroker({ url: testUrl, schema: 'bad-schema;drop' }), { message: /option "schema"/ });
    t.throws(() => postgresResultBackend({ url: testUrl, namespace: '' }), { message: /option "namespace"/ });
    t.throws(() => postgres({ url: testUrl, pollIntervalMs: -1 }), { message: /option "pollIntervalMs"/ });
    t.doesNotThrow(() => postgres({ url: 'postgresql://postgres:postgres@localhost:5432/postgres' }), 'postgresql:// is accepted');
  });

  t.test('an unreachable server at start is a ServiceUnavailableError naming the URL without its password', async (t) => {
    const url = 'postgres://postgres:s3cret@127.0.0.1:1/postgres';
    const error = await PostgresBroker.connect({ url, connectTimeoutMs: 2_000 }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    t.type(error, ServiceUnavailableError);
    t.match((error as Error).message, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres/);
    t.notMatch((error as Error).message, /s3cret/);
    await t.rejects(
      Stem.create({ plugins: [postgres({ url, connectTimeoutMs: 2_000 })] }),
      ServiceUnavailableError,
      'and so does Stem.create',
    );
  });
}
