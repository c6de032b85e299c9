import type { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import type { TaskStatus } from '../../sdk/contracts/index.js';
import { encodeEnvelope } from '../../sdk/envelope.js';
import { RedisBroker, RedisResultBackend } from '../../plugins/redis/index.js';
import { fetchWithin, makeEnvelope, retryOnStall, STALLED } from '../contract/support.js';

import { REDIS_URL, adminClient, countFetchScripts, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

/** How long after a whole batch a fetch reads the busy band without the fetch script (plugins/redis/redis-consumer.ts). */
const BUSY_READS_WITHIN_MS = 100;

// What the worker's hot path on Redis (#28) must keep while it does less per task: the fetch
// script returns the envelope alone for the usual stream entry, a busy consumer reads with a plain
// XREADGROUP between script runs, and set-states looks for a task's old index member only in a set
// that exists.

async function openBroker(t: Test): Promise<RedisBroker> {
  const namespace = testNamespace('hot-broker');
  const broker = await RedisBroker.connect(REDIS_URL, { namespace });
  t.teardown(async () => {
    await broker.close();
    await deleteNamespace(namespace);
  });
  return broker;
}

/** Two backends on one namespace, as a producer and a worker may be configured differently. */
async function openBackends(t: Test, producerListsQueued: boolean): Promise<[RedisResultBackend, RedisResultBackend, string]> {
  const namespace = testNamespace('hot-backend');
  const producer = await RedisResultBackend.connect(REDIS_URL, { namespace, listQueued: producerListsQueued });
  const worker = await RedisResultBackend.connect(REDIS_URL, { namespace });
  t.teardown(async () => {
    await producer.close();
    await worker.close();
    await deleteNamespace(namespace);
  });
  return [producer, worker, namespace];
}

/** `count` tasks a producer recorded as queued, on backends opened as openBackends does, and an admin client. */
async function queuedTasks(t: Test, producerListsQueued: boolean, count: number) {
  const [producer, worker, namespace] = await openBackends(t, producerListsQueued);
  const admin = await adminClient();
  t.teardown(() => admin.disconnect());
  const now = Date.now();
  const ids = Array.from({ length: count }, (_, i) => `${String.fromCharCode(97 + i)}-${now}`);
  await producer.set(
    ids.map((id) => queued(id, now)),
    { quiet: true },
  );
  return { producer, worker, namespace, admin, now, ids };
}

function queued(id: string, updatedAt: number): TaskStatus {
  return { id, state: 'queued', name: 'hot.noop', queue: 'hot', attempt: 0, updatedAt };
}

function written(id: string, state: TaskStatus['state'], updatedAt: number): TaskStatus {
  return {
    id,
    state,
    name: 'hot.noop',
    queue: 'hot',
    attempt: 0,
    workerId: 'w1',
    updatedAt,
    result: state === 'succeeded' ? 1 : undefined,
  };
}

if (await requireRedis(t)) {
  t.test('each stream entry is delivered with its own lease, whatever its shape; a bad envelope is dead-lettered', async (t) => {
    const broker = await openBroker(t);
    const queue = 'shapes';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const stream = broker.keys(queue).stream('0');
    const usual = makeEnvelope(queue);
    const noLease = makeEnvelope(queue);
    const extraField = makeEnvelope(queue);
    await admin.xadd(stream, '*', 'v', '120000', 'e', encodeEnvelope(usual));
    await admin.xadd(stream, '*', 'e', encodeEnvelope(noLease));
    await admin.xadd(stream, '*', 'v', '90000', 'e', encodeEnvelope(extraField), 'x', '1');
    await admin.xadd(stream, '*', 'v', '60000', 'e', '{not json');

    const before = Date.now();
    const deliveries = await fetchWithin(consumer, 10, 30_000);
    // Each lease runs from the fetch, which took (fetched - before): the upper bounds allow that, so a slow fetch cannot
    // fail them (a fixed 5 s allowance could).
    const fetched = Date.now() - before;
    t.same(
      deliveries.map((d) => d.envelope.id),
      [usual.id, noLease.id, extraField.id],
      'the three envelopes, in stream order',
    );
    const leaseOf = (id: string): number => deliveries.find((d) => d.envelope.id === id)!.leaseExpiresAt - before;
    const within = (lease: number, ms: number): boolean => lease >= ms && lease < ms + fetched + 5_000;
    t.ok(within(leaseOf(usual.id), 120_000), 'the usual entry: the lease of its "v" field');
    t.ok(within(leaseOf(extraField.id), 90_000), 'an entry with more fields: its "v" field too');
    const defaultLease = leaseOf(noLease.id);
    t.ok(defaultLease > 0 && defaultLease !== 120_000, 'an entry without "v": the default visibility timeout');
    t.same(deliveries[0]!.envelope, usual, 'the envelope arrives whole');
    await broker.ack(deliveries);
    const page = await broker.listDeadLetters(queue);
    t.same(
      page.entries.map((letter) => [letter.reason, letter.meta.raw]),
      [['malformed-envelope', '{not json']],
      'the bad envelope is dead-lettered with its raw text',
    );
    t.equal(await admin.zcard(broker.keys(queue).leases('')), 0, 'no lease left');
  });

  t.test(
    'a busy consumer reads without the fetch script, yet a delayed task falling due and a lapsed lease are still picked up',
    async (t) => {
      const broker = await openBroker(t);
      const queue = 'busy';
      const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
      t.teardown(() => consumer.close());
      const fetchScripts = await countFetchScripts(t, broker.keys(queue).leases(''));
      await broker.publish(Array.from({ length: 400 }, () => makeEnvelope(queue)));
      const first = await fetchWithin(consumer, 10, 30_000);
      t.equal(first.length, 10, 'a whole batch: the queue is busy');
      // One of them loses its lease at once (its holder stalled), and a delayed task falls due soon.
      const lapsed = first[0]!;
      await broker.extendLeases([lapsed], 0);
      await broker.ack(first.slice(1));
      const delayed = makeEnvelope(queue, { notBefore: Date.now() + 50 });
      await broker.publish([delayed]);
      const scriptsBefore = fetchScripts.runs;
      let fetches = 0;
      let seenDelayed = false;
      let seenLapsed = false;
      // A fetch skips the script only when it comes within 100 ms of the script's last whole batch: on a loaded machine
      // a round can take longer. So the rounds go on (up to the whole queue: 391 entries and the delayed task) until a
      // fetch did skip it, not only until both tasks were seen; a slow round no longer ends the case with no chance.
      const left = 400 - 9 + 1;
      let delivered = 0;
      const skipped = () => fetchScripts.runs - scriptsBefore < fetches;
      for (let round = 0; round < 100 && delivered < left && !(seenDelayed && seenLapsed && skipped()); round++) {
        const deliveries = await fetchWithin(consumer, 10, 30_000);
        fetches++;
        delivered += deliveries.length;
        t.ok(deliveries.length <= 10, 'never more than max');
        for (const delivery of deliveries) {
          if (delivery.envelope.id === delayed.id) seenDelayed = true;
          if (delivery.envelope.id === lapsed.envelope.id) {
            seenLapsed = true;
            t.equal(delivery.redeliveries, 1, 'the lapsed task comes back as a redelivery');
          }
        }
        await broker.ack(deliveries);
        // a busy worker takes a moment per batch
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      t.ok(seenDelayed, 'the delayed task was delivered while the queue stayed busy');
      t.ok(seenLapsed, 'the task whose lease lapsed was taken over');
      t.ok(
        fetchScripts.runs - scriptsBefore < fetches,
        `fewer fetch script runs (${fetchScripts.runs - scriptsBefore}) than fetches (${fetches})`,
      );
      t.equal(await broker.inflight(queue), 0, 'every lease was settled');
    },
  );

  t.test('a busy consumer never leases more than it asked for, and serves the higher band first', async (t) => {
    const broker = await openBroker(t);
    const queue = 'bands';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    await broker.publish([
      ...Array.from({ length: 50 }, () => makeEnvelope(queue, { priority: 0 })),
      ...Array.from({ length: 50 }, () => makeEnvelope(queue, { priority: 5 })),
    ]);
    const priorities: number[] = [];
    let overleased = 0;
    while (priorities.length < 100) {
      const deliveries = await fetchWithin(consumer, 10, 30_000);
      if (deliveries.length === 0) break;
      if ((await broker.inflight(queue)) > 10) overleased++;
      priorities.push(...deliveries.map((delivery) => delivery.envelope.priority));
      await broker.ack(deliveries);
    }
    t.equal(overleased, 0, 'never more than max leased at once');
    t.same(priorities, [...Array(50).fill(5), ...Array(50).fill(0)], 'band 5 drained before band 0');
  });

  t.test('a busy consumer whose group vanished goes back to the fetch script, which makes the group again', async (t) => {
    const broker = await openBroker(t);
    const queue = 'regroup';
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    await broker.publish(Array.from({ length: 30 }, () => makeEnvelope(queue)));
    const first = await fetchWithin(consumer, 10, 30_000);
    t.equal(first.length, 10);
    await broker.ack(first);
    const stream = broker.keys(queue).stream('0');
    await admin.xgroup('DESTROY', stream, 'stem:workers');
    const next = await fetchWithin(consumer, 10, 30_000);
    t.equal(next.length, 10, 'delivered after the group was made again');
    await broker.ack(next);
  });

  t.test('a busy read whose reply a dropped connection lost leaves every entry it read leased', async (t) => {
    // The second fetch is a busy read only when it comes within 100 ms of the first (BUSY_READS_WITHIN_MS): when a stall
    // of this process delayed it past that and the fetch script ran instead, the case runs again on a fresh queue.
    await retryOnStall(t, BUSY_READS_WITHIN_MS, async (_ms, lastTry) => {
      const broker = await openBroker(t);
      const queue = 'lost-reply';
      const consumer = await broker.consumer({ queues: [queue], consumerId: 'w1' });
      t.teardown(() => consumer.close());
      const admin = await adminClient();
      t.teardown(() => admin.disconnect());
      const fetchScripts = await countFetchScripts(t, broker.keys(queue).leases(''));
      const stream = broker.keys(queue).stream('0');
      const leases = broker.keys(queue).leases('');
      await broker.publish(Array.from({ length: 40 }, () => makeEnvelope(queue)));
      const firstAt = Date.now(); // the busy spell runs from the first fetch's own clock reading, not before this
      const first = await fetchWithin(consumer, 10, 30_000);
      t.equal(first.length, 10, 'a whole batch: the queue is busy');
      const scriptsBefore = fetchScripts.runs;
      // The reply of the next (busy) read never reaches the client: its socket stops reading, and is
      // destroyed once the server has run the read; ioredis reconnects and sends the read again.
      const socket = (broker.connection.client as Redis).stream;
      socket.pause();
      const nextAt = Date.now();
      const next = consumer.fetch(10, new AbortController().signal);
      const pendingCount = async () => Number(((await admin.xpending(stream, 'stem:workers')) as [number])[0]);
      // a ceiling of 60 s (was 2 s) for the server to run the busy read
      for (let i = 0; i < 12_000 && (await pendingCount()) < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      if (fetchScripts.runs !== scriptsBefore && nextAt - firstAt >= BUSY_READS_WITHIN_MS - 20 && !lastTry) {
        socket.destroy();
        await broker.ack([...first, ...(await next)]);
        return STALLED;
      }
      t.equal(await pendingCount(), 20, 'the server ran the busy read');
      t.equal(fetchScripts.runs, scriptsBefore, 'it was a busy read, not the fetch script');
      socket.destroy();
      const second = await next;
      t.equal(second.length, 10, 'the read sent again delivered a batch');
      const pending = (await admin.xpending(stream, 'stem:workers', '-', '+', 100)) as Array<[string]>;
      t.equal(pending.length, 30, 'three reads ran');
      const unleased: string[] = [];
      for (const [id] of pending) if ((await admin.zscore(leases, `0:${id}`)) === null) unleased.push(id);
      t.same(unleased, [], 'every pending entry has its lease, also those of the read whose reply was lost');
      await broker.ack([...first, ...second]);
    });
  });

  t.test('without listQueued at the producer, the writes of a worker index its tasks and create no queued set', async (t) => {
    const { worker, namespace, admin, now, ids } = await queuedTasks(t, false, 5);
    await worker.set(ids.map((id) => written(id, 'succeeded', now + 1)));
    t.equal(await admin.exists(`${namespace}:tasks:queued`), 0, 'no queued set');
    t.equal(await admin.zcard(`${namespace}:tasks:succeeded`), 5);
    const page = await worker.listTasks({ state: 'succeeded' });
    t.same(page.tasks.map((task) => task.id).sort(), [...ids].sort());
  });

  t.test('with listQueued at the producer only, a worker without it still takes its tasks out of the queued set', async (t) => {
    const { worker, namespace, admin, now, ids } = await queuedTasks(t, true, 5);
    t.equal(await admin.zcard(`${namespace}:tasks:queued`), 5, 'listed as queued');
    // One call of five: running for four of them, then succeeded for two of those in the same call.
    await worker.set([
      written(ids[0]!, 'running', now + 1),
      written(ids[1]!, 'running', now + 1),
      written(ids[2]!, 'running', now + 1),
      written(ids[3]!, 'running', now + 1),
      written(ids[0]!, 'succeeded', now + 2),
    ]);
    t.equal(await admin.zcard(`${namespace}:tasks:queued`), 1, 'only the task not started is still listed as queued');
    t.same(
      (await worker.listTasks({ state: 'queued' })).tasks.map((task) => task.id),
      [ids[4]],
    );
    t.same((await worker.listTasks({ state: 'running' })).tasks.map((task) => task.id).sort(), [ids[1], ids[2], ids[3]].sort());
    t.same(
      (await worker.listTasks({ state: 'succeeded' })).tasks.map((task) => task.id),
      [ids[0]],
    );
    t.equal(await admin.zcard(`${namespace}:tasks:running`), 3, 'no running member left behind by the task that finished');
  });

  t.test('a running state never overwrites a final one, nor a queued a running one, and the index follows what stands', async (t) => {
    const { producer, worker, namespace, admin, now, ids } = await queuedTasks(t, false, 4);
    await worker.set(ids.map((id) => written(id, 'succeeded', now + 2)));
    // late writes of earlier phases: dropped
    await worker.set(ids.map((id) => written(id, 'running', now + 3)));
    await producer.set(ids.map((id) => queued(id, now + 4)));
    for (const id of ids) t.equal((await worker.get(id))?.state, 'succeeded');
    t.equal(await admin.exists(`${namespace}:tasks:running`), 0, 'no running member');
    t.equal(await admin.exists(`${namespace}:tasks:queued`), 0, 'no queued member');
    t.equal(await admin.zcard(`${namespace}:tasks:succeeded`), 4);
  });
}
