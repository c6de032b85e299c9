import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import t from 'tap';
import { defineTask, InvalidTransactionError, Stem, TransactionNotSupportedError } from '../../sdk/index.js';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { sleep, uniqueName } from '../contract/support.js';
import { ignoreResultCases } from '../helpers/ignore-result-cases.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/** The application's own table, in the test's schema: the business row the job goes with. */
interface AppDatabase {
  orders: { id: string; total: number };
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('txenqueue');
  await runMigrations(testUrl, schema);
  await adminQuery(`create table "${schema}".orders (id text primary key, total int not null)`);
  t.teardown(() => dropSchema(schema));

  const runs = new Map<string, number>();
  const ship = defineTask({
    name: 'orders.ship',
    handler: async (args: { orderId: string }, ctx) => {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
      return `shipped ${args.orderId}`;
    },
  });
  const queue = uniqueName('tx');
  const stem = await Stem.create({
    plugins: [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), pollIntervalMs: 20 })],
    tasks: [ship],
    defaultQueue: queue,
  });
  const pool = new pg.Pool({ connectionString: testUrl, max: 4 });
  const db = new Kysely<AppDatabase>({ dialect: new PostgresDialect({ pool }) }).withSchema(schema);
  t.teardown(async () => {
    await stem.close();
    await db.destroy();
  });
  const worker = stem.worker({ queues: [queue], concurrency: 4 });
  await worker.start();

  /** What the database holds of a task: message rows and result rows. */
  const traces = async (id: string): Promise<{ messages: number; results: number }> => {
    const { rows } = await adminQuery<{ messages: string; results: string }>(
      `select (select count(*) from "${schema}".stem_messages where task_id = $1) as messages,
              (select count(*) from "${schema}".stem_results where id = $1) as results`,
      [id],
    );
    return { messages: Number(rows[0]!.messages), results: Number(rows[0]!.results) };
  };

  t.test('a task enqueued in a Kysely transaction that commits runs once, with its business row', async (t) => {
    const orderId = uniqueName('order');
    const handle = await db.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: orderId, total: 42 }).execute();
      return stem.enqueue(ship, { orderId }, { transaction: trx });
    });
    t.equal(await handle.result({ timeoutMs: 20_000 }), `shipped ${orderId}`);
    t.equal(runs.get(handle.id), 1, 'ran once');
    const order = await db.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirst();
    t.same(order, { id: orderId, total: 42 }, 'the business row committed with it');
  });

  t.test('a Kysely transaction that rolls back leaves nothing anywhere: no message, no state, no run', async (t) => {
    const orderId = uniqueName('order');
    let ids: string[] = [];
    const error = await db
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('orders').values({ id: orderId, total: 1 }).execute();
        const one = await stem.enqueue(ship, { orderId }, { transaction: trx });
        const many = await stem.enqueueMany(
          [
            { task: ship, args: { orderId } },
            { task: ship, args: { orderId } },
          ],
          { transaction: trx },
        );
        ids = [one.id, ...many.map((handle) => handle.id)];
        throw new Error('payment declined');
      })
      .catch((e: unknown) => e);
    t.match((error as Error).message, 'payment declined');
    // A task enqueued after them, on the same queue: once it has run, the others would have too.
    const after = await stem.enqueue(ship, { orderId: 'after' });
    await after.result({ timeoutMs: 20_000 });
    for (const id of ids) {
      t.same(await traces(id), { messages: 0, results: 0 }, `nothing of ${id} in the database`);
      t.equal(runs.get(id), undefined, `${id} never ran`);
      t.equal((await stem.status(id)).state, 'pending');
    }
    t.equal(await db.selectFrom('orders').select('id').where('id', '=', orderId).executeTakeFirst(), undefined, 'no order either');
  });

  t.test('a worker polling while the transaction is open never sees the task; it runs once the transaction commits', async (t) => {
    const client = new pg.Client({ connectionString: testUrl });
    await client.connect();
    t.teardown(() => client.end());
    await client.query('BEGIN');
    await client.query(`insert into "${schema}".orders (id, total) values ($1, $2)`, ['open-order', 7]);
    const handle = await stem.enqueue(ship, { orderId: 'open-order' }, { transaction: client });
    // The worker polls every 20 ms and is woken by every other enqueue: give it many chances.
    for (let i = 0; i < 10; i++) {
      await (await stem.enqueue(ship, { orderId: `noise-${i}` })).result({ timeoutMs: 20_000 });
      await sleep(20);
    }
    t.equal(runs.get(handle.id), undefined, 'not run while the transaction is open');
    t.equal((await stem.status(handle.id)).state, 'pending', 'its queued state is not visible outside the transaction');
    t.equal(await stem.broker.pending(queue), 0, 'no waiting message visible from outside');
    await client.query('COMMIT');
    t.equal(await handle.result({ timeoutMs: 20_000 }), 'shipped open-order', 'runs after COMMIT');
    t.equal(runs.get(handle.id), 1, 'once');
  });

  t.test('a raw pg client: committed tasks run, rolled-back ones leave nothing', async (t) => {
    const client = await pool.connect();
    t.teardown(() => client.release());
    await client.query('BEGIN');
    const [a, b] = await stem.enqueueMany(
      [
        { task: ship, args: { orderId: 'pg-a' } },
        { task: ship, args: { orderId: 'pg-b' } },
      ],
      { transaction: client },
    );
    await client.query('COMMIT');
    t.same(await Promise.all([a!.result({ timeoutMs: 20_000 }), b!.result({ timeoutMs: 20_000 })]), ['shipped pg-a', 'shipped pg-b']);

    await client.query('BEGIN');
    const lost = await stem.enqueue(ship, { orderId: 'pg-lost' }, { transaction: client });
    await client.query('ROLLBACK');
    await (await stem.enqueue(ship, { orderId: 'after' })).result({ timeoutMs: 20_000 });
    t.same(await traces(lost.id), { messages: 0, results: 0 }, 'nothing of the rolled-back task');
    t.equal(runs.get(lost.id), undefined);
  });

  t.test('the queued state is written in the transaction (in its message row): visible inside it, committed with it', async (t) => {
    const held = uniqueName('held');
    const client = await pool.connect();
    t.teardown(() => client.release());
    await client.query('BEGIN');
    const handle = await stem.enqueue(ship, { orderId: held }, { transaction: client, queue: held });
    const { rows } = await client.query(`select queued_state::json->>'state' as state from "${schema}".stem_messages where task_id = $1`, [
      handle.id,
    ]);
    t.same(rows, [{ state: 'queued' }], 'inside the transaction');
    t.equal((await stem.status(handle.id)).state, 'pending', 'not outside it');
    await client.query('COMMIT');
    t.equal((await stem.status(handle.id)).state, 'queued', 'after commit (no worker reads that queue)');
    t.equal(await stem.broker.purge(held), 1);
  });

  t.test('what cannot hold the task inside a transaction is refused with InvalidTransactionError, and nothing is written', async (t) => {
    const before = await adminQuery<{ count: string }>(`select count(*) from "${schema}".stem_messages`);
    const client = await pool.connect();
    t.teardown(() => client.release());
    const cases: Array<[string, unknown, RegExp]> = [
      ['a Kysely instance', db, /got a Kysely instance, not a transaction/],
      ['a pg Pool', pool, /got a pg Pool/],
      ['a pg client outside BEGIN', client, /not inside a transaction.*BEGIN/],
      ['a string', 'trx', /got string/],
      ['a plain object', {}, /neither a Kysely transaction nor a pg client/],
    ];
    for (const [what, transaction, message] of cases) {
      const error = await stem.enqueue(ship, { orderId: 'bad' }, { transaction }).catch((e: unknown) => e);
      t.type(error, InvalidTransactionError, what);
      t.match((error as Error).message, message, what);
    }
    await client.query('BEGIN');
    await client.query('select 1/0').catch(() => undefined);
    const refused = { constructor: InvalidTransactionError, message: /failed transaction/ };
    await t.rejects(stem.enqueue(ship, { orderId: 'bad' }, { transaction: client }), refused, 'a failed transaction');
    await client.query('ROLLBACK');
    // The failing statement still in flight: the client cannot tell its status yet (a CI run once
    // enqueued in that moment, and pg's own "current transaction is aborted" came through).
    await client.query('BEGIN');
    const failing = client.query('select 1/0').catch(() => undefined);
    await t.rejects(stem.enqueue(ship, { orderId: 'bad' }, { transaction: client }), refused, 'a transaction failing meanwhile');
    await failing;
    await client.query('ROLLBACK');
    await db
      .transaction()
      .execute(async (trx) => {
        await sql`select 1/0`.execute(trx).catch(() => undefined);
        await t.rejects(stem.enqueue(ship, { orderId: 'bad' }, { transaction: trx }), refused, 'a failed Kysely transaction');
      })
      .catch(() => undefined);
    const after = await adminQuery<{ count: string }>(`select count(*) from "${schema}".stem_messages`);
    t.equal(after.rows[0]!.count, before.rows[0]!.count, 'no message written');
  });

  t.test('a transaction on another database (no Stem tables there) is refused with InvalidTransactionError', async (t) => {
    const elsewhere = new URL(testUrl);
    elsewhere.pathname = '/postgres';
    const client = new pg.Client({ connectionString: elsewhere.toString() });
    await client.connect();
    t.teardown(() => client.end());
    await client.query('BEGIN');
    const error = await stem.enqueue(ship, { orderId: 'elsewhere' }, { transaction: client }).catch((e: unknown) => e);
    await client.query('ROLLBACK');
    t.type(error, InvalidTransactionError);
    t.match((error as Error).message, new RegExp(`its database has no "${schema}".stem_messages table.*roll it back`));
  });

  t.test('the tasks of one enqueueMany share one transaction or none', async (t) => {
    await db.transaction().execute(async (trx) => {
      await t.rejects(
        stem.enqueueMany([
          { task: ship, args: { orderId: 'x' } },
          { task: ship, args: { orderId: 'y' }, options: { transaction: trx } },
        ]),
        /must all go in the same transaction/,
      );
    });
    await sql`select 1`.execute(db);
  });

  t.test('the memory broker given a transaction refuses with TransactionNotSupportedError', async (t) => {
    const memory = await Stem.create({ tasks: [ship] });
    t.teardown(() => memory.close());
    await db.transaction().execute(async (trx) => {
      await t.rejects(memory.enqueue(ship, { orderId: 'm' }, { transaction: trx }), TransactionNotSupportedError);
    });
  });

  t.test('ignoreResult on Postgres', (t) =>
    ignoreResultCases(t, () => [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), migrate: false })]),
  );
}
