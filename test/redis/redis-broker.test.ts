import t, { type Test } from 'tap';
import type { Delivery } from '../../sdk/contracts/index.js';
import { ConfigError, ServiceUnavailableError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import { RedisBroker, redis, redisBroker } from '../../plugins/redis/index.js';
import { fetchWithin, makeEnvelope, waitFor } from '../contract/support.js';
import { REDIS_URL, adminClient, countFetchScripts, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

/** A broker in a fresh namespace whose keys are deleted when the test ends. */
async function openBroker(t: Test, options: Parameters<typeof RedisBroker.connect>[1] = {}): Promise<RedisBroker> {
  const namespace = testNamespace('broker');
  const broker = await RedisBroker.connect(REDIS_URL, { namespace, ...options });
  t.teardown(async () => {
    await broker.close();
    await deleteNamespace(namespace);
  });
  return broker;
}

t.test('options are checked when the factory is called, naming the option', async (t) => {
  t.throws(() => redisBroker({ url: 'http://localhost:6379' }), ConfigError);
  t.throws(() => redisBroker({ url: 'http://localhost:6379' }), /option "url" must start with redis:\/\/ or rediss:\/\//);
  t.throws(() => redisBroker({ url: 'redis://localhost:6379/abc' }), /option "url" has "\/abc" as database index/);
  t.throws(() => redisBroker({ namespace: '' }), /option "namespace"/);
  t.throws(() => redisBroker({ blockMs: -1 }), /redisBroker: option "blockMs" must be a positive integer/);
  t.throws(() => redis({ resultTtlMs: 1.5 }), /redis: option "resultTtlMs"/);
  t.doesNotThrow(() => redis({ url: 'rediss://:secret@example.com:6380/2', namespace: 'app' }));
});

t.test('an unreachable server fails startup with ServiceUnavailableError, password masked', async (t) => {
  const error = await RedisBroker.connect('redis://:hunter2@127.0.0.1:1/3', { connectTimeoutMs: 2_000 }).catch((e: unknown) => e);
  t.type(error, ServiceUnavailableError);
  t.match((error as Error).message, /cannot reach redis:\/\/:\*\*\*@127\.0\.0\.1:1\/3/);
  t.notMatch((error as Error).message, /hunter2/);
});

if (await requireRedis(t)) {
  t.test('a malformed stream entry is dead-lettered as malformed-envelope and the next task is still delivered', async (t) => {
    const broker = await openBroker(t);
    const queue = 'hand-written';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const stream = broker.keys(queue).stream('0');
    await admin.xadd(stream, '*', 'e', '{not json');
    await admin.xadd(stream, '*', 'e', JSON.stringify({ id: 'x', name: 'n' }));
    await admin.xadd(stream, '*', 'payload', 'no e field');
    const good = makeEnvelope(queue);
    await broker.publish([good]);

    const deliveries = await fetchWithin(consumer, 10, 30_000);
    t.same(
      deliveries.map((d) => d.envelope.id),
      [good.id],
      'only the valid task is delivered, in the same fetch',
    );
    await broker.ack(deliveries);
    const page = await broker.listDeadLetters(queue);
    t.equal(page.total, 3);
    t.same(
      page.entries.map((letter) => letter.reason),
      ['malformed-envelope', 'malformed-envelope', 'malformed-envelope'],
    );
    t.same(
      page.entries.map((letter) => letter.meta.raw),
      ['{not json', JSON.stringify({ id: 'x', name: 'n' }), { payload: 'no e field' }],
      'the raw payload is kept',
    );
    t.match(page.entries[0]!.meta.error, /not JSON/);
    t.match(page.entries[1]!.meta.error, /field "queue" must be a string/);
    t.equal(await broker.pending(queue), 0);
    t.equal(await broker.inflight(queue), 0);
    t.equal(await admin.xlen(stream), 0, 'the malformed entries left the stream');
    t.same(await broker.replayDeadLetters(queue), [], 'a malformed entry has no envelope to replay');
  });

  t.test('acknowledged entries are deleted from the stream, so it does not grow', async (t) => {
    const broker = await openBroker(t);
    const queue = 'trimmed';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    await broker.publish(Array.from({ length: 300 }, () => makeEnvelope(queue)));
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    t.equal(await admin.xlen(broker.keys(queue).stream('0')), 300);
    let acked = 0;
    while (acked < 300) {
      const batch = await fetchWithin(consumer, 128, 30_000);
      t.ok(batch.length <= 128, 'fetch never returns more than max');
      await broker.ack(batch);
      acked += batch.length;
    }
    t.equal(await admin.xlen(broker.keys(queue).stream('0')), 0);
    t.equal(await admin.zcard(broker.keys(queue).leases('')), 0, 'no lease left');
  });

  t.test('every key of a queue carries the same hash tag (one cluster slot)', async (t) => {
    const broker = await openBroker(t);
    const queue = 'tagged';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    await broker.publish([
      makeEnvelope(queue),
      makeEnvelope(queue, { priority: 7 }),
      makeEnvelope(queue, { notBefore: Date.now() + 60_000 }),
    ]);
    const [first] = await fetchWithin(consumer, 1, 30_000);
    await broker.deadLetter(first!, 'unrecoverable');
    await fetchWithin(consumer, 1, 30_000);
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const keys = await admin.keys(`{${broker.connection.namespace}:${queue}}*`);
    t.ok(keys.length >= 5, `streams, delayed, leases and dead letters: ${keys.join(', ')}`);
    const slots = new Set(await Promise.all(keys.map((key) => admin.call('CLUSTER', 'KEYSLOT', key).catch(() => keyTag(key)))));
    t.equal(slots.size, 1, 'one slot');
  });

  t.test('a lease that runs out is taken over by another consumer of the queue', async (t) => {
    // A full block as long as a minute: waking when the lease runs out (300 ms) and waking after a full block cannot be
    // mistaken for each other, however slow the machine (with the default 5 s block, the check was a speed limit).
    const broker = await openBroker(t, { blockMs: 60_000 });
    const queue = 'takeover';
    const holder = await broker.consumer({ queues: [queue], consumerId: 'dies' });
    const other = await broker.consumer({ queues: [queue], consumerId: 'lives' });
    t.teardown(() => other.close());
    const envelope = makeEnvelope(queue, { visibilityTimeoutMs: 300 });
    await broker.publish([envelope]);
    const [first] = await fetchWithin(holder, 1, 30_000);
    t.equal(first?.envelope.id, envelope.id);
    await holder.close();
    const started = Date.now();
    const [again] = await fetchWithin(other, 1, 45_000);
    t.equal(again?.envelope.id, envelope.id, 'redelivered to the other consumer');
    t.equal(again?.redeliveries, 1);
    t.ok(Date.now() - started < 30_000, 'the idle consumer woke when the lease ran out, not after a full block');
    await broker.deadLetter(first!, 'stale');
    t.equal(await broker.inflight(queue), 1, 'a stale receipt cannot dead-letter the current delivery');
    await broker.ack([again!]);
  });

  t.test('an entry read by a consumer that died before recording its lease is taken over by the sweep', async (t) => {
    const broker = await openBroker(t, { defaultVisibilityTimeoutMs: 300 });
    const queue = 'swept';
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const keys = broker.keys(queue);
    const setup = await broker.consumer({ queues: [queue], consumerId: 'setup' });
    await setup.close();
    const envelope = makeEnvelope(queue);
    await broker.publish([envelope]);
    // What an idle consumer's blocking XREADGROUP does, without the lease it records next.
    const read = await admin.call('XREADGROUP', 'GROUP', keys.group(''), 'ghost', 'COUNT', 1, 'STREAMS', keys.stream('0'), '>');
    t.ok(read, 'the ghost read the entry');
    t.equal(await admin.zcard(keys.leases('')), 0, 'and recorded no lease');
    await new Promise((resolve) => setTimeout(resolve, 400));
    const rescuer = await broker.consumer({ queues: [queue], consumerId: 'rescuer' });
    t.teardown(() => rescuer.close());
    const [delivery] = await fetchWithin(rescuer, 1, 30_000);
    t.equal(delivery?.envelope.id, envelope.id, 'the entry is delivered again');
    t.equal(delivery?.redeliveries, 1, 'as a redelivery');
    await broker.ack([delivery!]);
    t.equal(await broker.inflight(queue), 0);
  });

  t.test('an idle consumer of plain queues leases what wakes it, and the lease is settled with the ack', async (t) => {
    const broker = await openBroker(t);
    const queue = 'woken';
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const consumer = await broker.consumer({ queues: [queue, 'woken-too'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const waiting = fetchWithin(consumer, 5, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const envelope = makeEnvelope(queue, { priority: 3 });
    await broker.publish([envelope]);
    const [delivery] = await waiting;
    t.equal(delivery?.envelope.id, envelope.id);
    t.ok(await waitFor(async () => (await admin.zcard(broker.keys(queue).leases(''))) === 1), 'its lease is recorded');
    t.equal(await broker.inflight(queue), 1);
    await broker.ack([delivery!]);
    t.equal(await admin.zcard(broker.keys(queue).leases('')), 0, 'the ack removes the lease');
    t.equal(await broker.inflight(queue), 0);
  });

  t.test('a consumer kept busy by its blocking reads skips the fetch script, yet still promotes a due delayed task', async (t) => {
    const broker = await openBroker(t);
    const queue = 'reblock';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const fetchScripts = await countFetchScripts(t, broker.keys(queue).leases(''));
    // Let the consumer go idle: its fetch script finds nothing and it blocks.
    const first = fetchWithin(consumer, 1, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await broker.publish([makeEnvelope(queue)]);
    await broker.ack(await first);
    const delayed = makeEnvelope(queue, { notBefore: Date.now() + 300 });
    await broker.publish([delayed]);
    let seenDelayed = false;
    let immediates = 0;
    const deadline = Date.now() + 60_000;
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const name = `stem:${broker.connection.namespace}:consumer:w1`;
    const blocked = async (): Promise<boolean> =>
      ((await admin.call('CLIENT', 'LIST')) as string).split('\n').some((line) => line.includes(`name=${name} `) && / flags=b /.test(line));
    // A consumer re-blocks without the script only within 100 ms of the script's last run (REBLOCK_WITHIN_MS): on a loaded
    // machine a round can take longer. So the rounds go on until one did skip it, not only until the delayed task came.
    while (!(seenDelayed && fetchScripts.runs < immediates) && Date.now() < deadline) {
      const fetching = fetchWithin(consumer, 1, 30_000);
      // publish only once the consumer is blocked, as a task arriving for an idle worker does
      await waitFor(blocked, 30_000, 1);
      await broker.publish([makeEnvelope(queue)]);
      immediates++;
      const deliveries = await fetching;
      if (deliveries.some((delivery) => delivery.envelope.id === delayed.id)) seenDelayed = true;
      await broker.ack(deliveries);
    }
    t.ok(seenDelayed, 'the delayed task was delivered while immediate tasks kept waking the consumer');
    t.ok(
      fetchScripts.runs < immediates,
      `fewer fetch script runs (${fetchScripts.runs}) than tasks that woke the consumer (${immediates})`,
    );
  });

  t.test('a consumer whose connections are killed mid-fetch reconnects and keeps receiving', async (t) => {
    const broker = await openBroker(t, { blockMs: 1_000 });
    const queue = 'killed';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const namespace = broker.connection.namespace;
    const received = new Set<string>();
    const controller = new AbortController();
    const loop = (async () => {
      while (!controller.signal.aborted) {
        const batch = await consumer.fetch(16, controller.signal);
        for (const delivery of batch) received.add(delivery.envelope.id);
        if (batch.length > 0) await broker.ack(batch);
      }
    })();
    const sent: string[] = [];
    for (let round = 0; round < 5; round++) {
      const envelopes = Array.from({ length: 20 }, () => makeEnvelope(queue, { visibilityTimeoutMs: 1_000 }));
      sent.push(...envelopes.map((e) => e.id));
      await broker.publish(envelopes);
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Kill the consumer's blocking connection (and, every other round, the command connection too).
      // wait until the connections killed in the round before are back, then kill them again
      let ids: string[] = [];
      await waitFor(async () => (ids = await clientIds(admin, namespace, round % 2 === 0)).length > 0, 30_000);
      let killed = 0;
      for (const id of ids) killed += Number(await admin.call('CLIENT', 'KILL', 'ID', id));
      t.ok(killed >= 1, `round ${round}: killed ${killed} connection(s)`);
    }
    try {
      t.ok(await waitFor(() => sent.every((id) => received.has(id)), 60_000), `every task was received (${received.size}/${sent.length})`);
    } finally {
      controller.abort();
      await loop;
    }
  });

  t.test('a consumer of several sources returns at most max, highest priority first, and keeps the rest for the next fetch', async (t) => {
    const broker = await openBroker(t);
    const consumer = await broker.consumer({ queues: ['qa', 'qb'], broadcasts: ['ctl'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const a = Array.from({ length: 3 }, () => makeEnvelope('qa', { priority: 1 }));
    const b = Array.from({ length: 3 }, () => makeEnvelope('qb', { priority: 5 }));
    const c = makeEnvelope('broadcast://ctl', { priority: 0 });
    await broker.publish([...a, ...b, c]);
    const first = await fetchWithin(consumer, 4, 30_000);
    t.same(
      first.map((d) => d.envelope.id),
      [...b.map((e) => e.id), a[0]!.id],
    );
    const rest = await fetchWithin(consumer, 10, 30_000);
    t.same(rest.map((d) => d.envelope.id).sort(), [a[1]!.id, a[2]!.id, c.id].sort());
    await broker.ack([...first, ...rest]);
    t.same(await broker.listQueues(), ['qa', 'qb', 'broadcast://ctl']);
  });

  t.test('closing a consumer hands back what it read ahead', async (t) => {
    const broker = await openBroker(t);
    const first = await broker.consumer({ queues: ['q1', 'q2'], consumerId: 'w1' });
    await broker.publish([makeEnvelope('q1'), makeEnvelope('q2')]);
    const one = await fetchWithin(first, 1, 30_000);
    t.equal(one.length, 1);
    await first.close();
    const second = await broker.consumer({ queues: ['q1', 'q2'], consumerId: 'w2' });
    t.teardown(() => second.close());
    const other = await fetchWithin(second, 10, 30_000);
    t.equal(other.length, 1, 'the read-ahead delivery is leased again at once');
    t.not(other[0]!.envelope.id, one[0]!.envelope.id);
  });

  t.test('nack puts tasks back, delayed or at once, and pending counts them exactly', async (t) => {
    const broker = await openBroker(t);
    const consumer = await broker.consumer({ queues: ['exact'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    await broker.publish([makeEnvelope('exact', { id: uuidv7() }), makeEnvelope('exact')]);
    const [d1, d2] = await fetchWithin(consumer, 2, 30_000);
    await broker.nack(d1!, { requeue: true, delayMs: 50 });
    await broker.nack(d2!, { requeue: true });
    t.equal(await broker.pending('exact'), 2);
    t.equal(await broker.inflight('exact'), 0);
    const back: Delivery[] = [];
    t.ok(await waitFor(async () => (back.push(...(await fetchWithin(consumer, 2, 500))), back.length === 2), 30_000));
    await broker.ack(back);
    t.equal(await broker.pending('exact'), 0);
  });
}

function keyTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return key.slice(open + 1, close);
}

/** The ids of this namespace's consumer connections (blocking ones, and the command connection when asked). */
async function clientIds(admin: Awaited<ReturnType<typeof adminClient>>, namespace: string, withCommand: boolean): Promise<string[]> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  const ids: string[] = [];
  for (const line of list.split('\n')) {
    const name = /name=(\S*)/.exec(line)?.[1] ?? '';
    const id = /id=(\d+)/.exec(line)?.[1];
    if (id === undefined) continue;
    if (name.startsWith(`stem:${namespace}:consumer:`) || (withCommand && name === `stem:${namespace}`)) ids.push(id);
  }
  return ids;
}
