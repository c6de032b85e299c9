import t, { type Test } from 'tap';
import type { Delivery } from '../../sdk/contracts/broker.js';
import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import { broadcastAddress } from '../../sdk/envelope.js';
import { PostgresBroker, PostgresResultBackend, runMigrations, type PostgresOptions } from '../../plugins/postgres/index.js';
import { fetchWithin, makeEnvelope, sleep, uniqueName, waitFor } from '../contract/support.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

/** Ends every server connection whose application_name starts with `prefix` (pool and LISTEN alike). */
async function terminateBackends(prefix: string): Promise<number> {
  const { rows } = await adminQuery<{ pid: number }>(
    `select pid from pg_stat_activity where application_name like $1 || '%' and pid <> pg_backend_pid()`,
    [prefix],
  );
  await adminQuery('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [rows.map((row) => row.pid)]);
  return rows.length;
}

if (await requirePostgres(t)) {
  const schema = uniqueSchema('resilience');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  const options = (overrides: Partial<PostgresOptions> = {}): PostgresOptions => ({
    url: testUrl,
    schema,
    namespace: uniqueName('ns'),
    migrate: false,
    applicationName: uniqueName('stem-test'),
    ...overrides,
  });

  /**
   * Two instances of a service on the same namespace, each on its own pool: the first is the one
   * under test (its connections carry `opts.applicationName`), the second plays another process.
   */
  async function pairOf<T extends { close(): Promise<void> }>(
    t: Test,
    connect: (options: PostgresOptions) => Promise<T>,
    opts: PostgresOptions,
  ): Promise<[T, T]> {
    const pair: [T, T] = [await connect(opts), await connect({ ...opts, applicationName: uniqueName('other') })];
    t.teardown(() => Promise.all(pair.map((service) => service.close())));
    return pair;
  }

  t.test('a row whose payload is not an envelope is dead-lettered as malformed-envelope, and the consumer goes on', async (t) => {
    const opts = options();
    const broker = await PostgresBroker.connect(opts);
    t.teardown(() => broker.close());
    const queue = uniqueName('queue');
    const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
    t.teardown(() => consumer.close());
    await adminQuery(
      `insert into "${schema}".stem_messages (namespace, queue, task_id, priority, payload) values ($1, $2, 'broken-1', 5, '{not json'), ($1, $2, 'broken-2', 5, '{"id":"x"}')`,
      [opts.namespace, queue],
    );
    const good = makeEnvelope(queue);
    await broker.publish([good]);
    const deliveries = await fetchWithin(consumer, 10, 3_000);
    t.same(
      deliveries.map((d) => d.envelope.id),
      [good.id],
      'only the valid envelope is delivered',
    );
    const letters = await broker.listDeadLetters(queue);
    t.equal(letters.total, 2);
    t.same(
      letters.entries.map((letter) => letter.reason),
      ['malformed-envelope', 'malformed-envelope'],
    );
    t.same(letters.entries.map((letter) => letter.meta.payload).sort(), ['{"id":"x"}', '{not json']);
    t.match(String(letters.entries.find((letter) => letter.meta.payload === '{not json')?.meta.error), /not JSON/);
    t.equal(letters.entries[0]!.envelope, undefined, 'no envelope to keep');
    t.same(await broker.replayDeadLetters(queue), [], 'a malformed letter cannot be replayed');
    await broker.ack(deliveries);
  });

  t.test('fetch keeps delivering while its pool and LISTEN connections are terminated', async (t) => {
    const opts = options();
    const [broker, producer] = await pairOf(t, (o) => PostgresBroker.connect(o), opts);
    const queue = uniqueName('queue');
    const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
    t.teardown(() => consumer.close());
    const envelopes = Array.from({ length: 200 }, (_, i) => makeEnvelope(queue, { args: { i } }));
    const received = new Set<string>();
    const controller = new AbortController();
    const loop = (async () => {
      while (!controller.signal.aborted) {
        const batch: Delivery[] = await consumer.fetch(7, controller.signal);
        for (const delivery of batch) received.add(delivery.envelope.id);
        if (batch.length > 0) await broker.ack(batch);
      }
    })();
    let terminated = 0;
    for (let i = 0; i < 10; i++) {
      await producer.publish(envelopes.slice(i * 20, i * 20 + 20));
      if (i % 3 === 1) terminated += await terminateBackends(opts.applicationName!);
      await sleep(30);
    }
    t.ok(terminated > 0, `terminated ${terminated} connections of the consumer's broker`);
    t.ok(
      await waitFor(() => received.size === envelopes.length, 15_000),
      `every message delivered (${received.size} of ${envelopes.length})`,
    );
    controller.abort();
    await loop;
    t.equal(await producer.pending(queue), 0);
    t.equal(await producer.inflight(queue), 0);
  });

  t.test('after its LISTEN connection is terminated, a NOTIFY still wakes an idle consumer at once (not by polling)', async (t) => {
    const opts = options({ pollIntervalMs: 60_000 });
    const [broker, producer] = await pairOf(t, (o) => PostgresBroker.connect(o), opts);
    const queue = uniqueName('queue');
    const consumer = await broker.consumer({ queues: [queue], consumerId: uniqueName('worker') });
    t.teardown(() => consumer.close());
    const first = fetchWithin(consumer, 1, 1_000);
    await sleep(100);
    t.ok((await terminateBackends(`${opts.applicationName}:listen`)) >= 1, 'the LISTEN connection was terminated');
    t.same(await first, [], 'nothing to deliver yet');
    const waiting = fetchWithin(consumer, 1, 10_000);
    await sleep(100);
    const started = Date.now();
    const envelope = makeEnvelope(queue);
    await producer.publish([envelope]);
    const deliveries = await waiting;
    t.same(
      deliveries.map((d) => d.envelope.id),
      [envelope.id],
    );
    t.ok(Date.now() - started < 2_000, `woken in ${Date.now() - started}ms with a 60s poll interval`);
    await broker.ack(deliveries);
  });

  t.test('a broadcast is copied to each live subscriber; a closed consumer is no longer subscribed', async (t) => {
    const opts = options();
    const broker = await PostgresBroker.connect(opts);
    t.teardown(() => broker.close());
    const channel = uniqueName('channel');
    const a = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'a' });
    const b = await broker.consumer({ queues: [broadcastAddress(channel)], consumerId: 'b' });
    t.teardown(() => a.close());
    await broker.publish([makeEnvelope(broadcastAddress(channel))]);
    t.equal(await broker.pending(broadcastAddress(channel)), 2, 'one copy per subscriber');
    await b.close();
    t.equal(await broker.pending(broadcastAddress(channel)), 1, "the closed subscriber's copy is gone");
    await broker.publish([makeEnvelope(broadcastAddress(channel))]);
    const copies = await fetchWithin(a, 10, 2_000);
    t.equal(copies.length, 2, 'the remaining subscriber gets both');
    t.ok((await broker.listQueues()).includes(broadcastAddress(channel)));
    await broker.ack(copies);
  });

  t.test('a watch in one process sees writes made by another, small or too large for a NOTIFY payload', async (t) => {
    const opts = options();
    const [watcher, writer] = await pairOf(t, (o) => PostgresResultBackend.connect(o), opts);
    const id = uniqueName('task');
    const seen: TaskStatus[] = [];
    const unsubscribe = await watcher.watch(id, (status) => seen.push(status));
    await writer.set([{ id, state: 'running', attempt: 0, updatedAt: Date.now() }]);
    const big = 'x'.repeat(20_000);
    await writer.set([{ id, state: 'succeeded', attempt: 0, updatedAt: Date.now(), result: big }]);
    t.ok(await waitFor(() => seen.length === 2), 'both writes seen');
    t.same(
      seen.map((s) => s.state),
      ['running', 'succeeded'],
    );
    t.equal(seen[1]!.result, big, 'a state larger than a NOTIFY payload is read back');
    await unsubscribe();
    await writer.set([{ id, state: 'failed', attempt: 1, updatedAt: Date.now() }]);
    await sleep(200);
    t.equal(seen.length, 2, 'nothing after unsubscribe');
  });

  t.test('a watch whose LISTEN connection was terminated catches up on what was written meanwhile', async (t) => {
    const opts = options();
    const [watcher, writer] = await pairOf(t, (o) => PostgresResultBackend.connect(o), opts);
    const id = uniqueName('task');
    const seen: string[] = [];
    await watcher.watch(id, (status) => seen.push(status.state));
    await terminateBackends(`${opts.applicationName}:listen`);
    await writer.set([{ id, state: 'succeeded', attempt: 0, updatedAt: Date.now() }]);
    t.ok(await waitFor(() => seen.includes('succeeded'), 5_000), 'the write made while disconnected is reported');
  });

  t.test('expired states read as null and are pruned', async (t) => {
    const opts = options();
    const backend = await PostgresResultBackend.connect(opts);
    t.teardown(() => backend.close());
    await backend.set([{ id: 'short', state: 'succeeded', attempt: 0, updatedAt: Date.now() }], { ttlMs: 50 });
    await backend.set([{ id: 'long', state: 'succeeded', attempt: 0, updatedAt: Date.now() }]);
    await sleep(120);
    t.equal(await backend.get('short'), null, 'expired reads as null');
    t.not(await backend.get('long'), null);
    await backend.prune();
    const { rows } = await adminQuery(`select id from "${schema}".stem_results where namespace = $1`, [opts.namespace]);
    t.same(
      rows.map((row) => row.id),
      ['long'],
      'the expired row is deleted',
    );
  });

  t.test('concurrent group members from separate connections: exactly one sees the group complete; one chord claim wins', async (t) => {
    const opts = options();
    const backends = await Promise.all(Array.from({ length: 5 }, () => PostgresResultBackend.connect(opts)));
    t.teardown(() => Promise.all(backends.map((backend) => backend.close())));
    const members = Array.from({ length: 40 }, (_, i) => `m${i}`);
    await backends[0]!.initGroup('g', members);
    const counts = await Promise.all(
      members.map((id, i) =>
        backends[i % backends.length]!.recordGroupResult('g', { id, state: 'succeeded', attempt: 0, updatedAt: Date.now(), result: i }),
      ),
    );
    t.equal(counts.filter((count) => count.completed === count.expected).length, 1, 'one member completes the group');
    t.same(
      counts.map((count) => count.completed).sort((x, y) => x - y),
      members.map((_, i) => i + 1),
      'each count seen once',
    );
    const group = await backends[1]!.getGroup('g');
    t.same(
      group?.results.map((status) => status?.result),
      members.map((_, i) => i),
      'results in member order',
    );
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => backends[i % backends.length]!.claimChord('chord', { leaseMs: 60_000, claimer: `b${i}` })),
    );
    t.equal(claims.filter((claim) => claim.won).length, 1, 'exactly one claim');
  });
}
