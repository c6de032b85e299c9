import t, { type Test } from 'tap';
import { broadcastAddress } from '../../sdk/envelope.js';
import { ClosedError } from '../../sdk/errors.js';
import { MemoryBroker } from '../../sdk/memory/index.js';
import { CLOCK_SLACK_MS, fetchWithin, makeEnvelope, retryOnStall, STALLED, sleep, uniqueName } from '../contract/support.js';

/** A broker closed when the test ends. */
function openBroker(t: Test): MemoryBroker {
  const broker = new MemoryBroker();
  t.teardown(() => broker.close());
  return broker;
}

function countTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

t.test('a subscriber that registers after a broadcast gets nothing of it', async (t) => {
  const broker = openBroker(t);
  const channel = uniqueName('channel');
  const early = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'early' });
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  const late = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'late' });
  t.equal((await fetchWithin(early, 10, 30_000)).length, 1);
  t.same(await fetchWithin(late, 10, 300), []);
});

t.test('a broadcast with no subscriber is dropped, and its channel is listed', async (t) => {
  const broker = openBroker(t);
  const channel = uniqueName('channel');
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  t.equal(await broker.pending(broadcastAddress(channel)), 0);
  t.ok((await broker.listQueues()).includes(broadcastAddress(channel)));
});

t.test('consumers with the same consumerId share one copy of a broadcast', async (t) => {
  const broker = openBroker(t);
  const channel = uniqueName('channel');
  const first = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'worker-1' });
  const second = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'worker-1' });
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  const got = [...(await fetchWithin(first, 10, 300)), ...(await fetchWithin(second, 10, 300))];
  t.equal(got.length, 1);
  t.equal(await broker.pending(broadcastAddress(channel)), 0);
  t.equal(await broker.inflight(broadcastAddress(channel)), 1);
});

t.test('closing the last consumer of a subscriber ends its subscription', async (t) => {
  const broker = openBroker(t);
  const channel = uniqueName('channel');
  const consumer = await broker.consumer({ queues: [], broadcasts: [channel], consumerId: 'worker-1' });
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  t.equal(await broker.pending(broadcastAddress(channel)), 1);
  await consumer.close();
  t.equal(await broker.pending(broadcastAddress(channel)), 0, 'its copies are gone');
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  t.equal(await broker.pending(broadcastAddress(channel)), 0, 'later broadcasts do not pile up for it');
});

t.test('a broadcast address among the queues subscribes to that channel', async (t) => {
  const broker = openBroker(t);
  const channel = uniqueName('channel');
  const consumer = await broker.consumer({ queues: [broadcastAddress(channel)], consumerId: 'worker-1' });
  await broker.publish([makeEnvelope(broadcastAddress(channel))]);
  t.equal((await fetchWithin(consumer, 10, 30_000)).length, 1);
  t.notOk((await broker.listQueues()).includes(channel), 'no plain queue named after the channel');
});

t.test('a stale ack after a redelivery leaves the new delivery leased', async (t) => {
  const broker = openBroker(t);
  // The redelivery has the same short lease: when a stall of the machine outlasted it before inflight was counted (seen
  // from the clock), the case runs again on a fresh queue with a 4x lease.
  await retryOnStall(t, 100, async (leaseMs, lastTry) => {
    const queue = uniqueName('queue');
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
    await broker.publish([makeEnvelope(queue, { visibilityTimeoutMs: leaseMs })]);
    const [first] = await fetchWithin(consumer, 1, 30_000);
    const [second] = await fetchWithin(consumer, 1, 30_000);
    t.equal(second?.redeliveries, 1);
    await broker.ack([first!]);
    await broker.deadLetter(first!, 'stale');
    const inflight = await broker.inflight(queue);
    if (inflight !== 1 && Date.now() >= second!.leaseExpiresAt - CLOCK_SLACK_MS && !lastTry) return STALLED;
    t.equal(inflight, 1, 'the stale ack did not touch the redelivery');
    t.equal((await broker.listDeadLetters(queue)).total, 0, 'nor did the stale dead letter');
    const leaseEnd = second!.leaseExpiresAt;
    const extendStarted = Date.now();
    await broker.extendLeases([second!], 60_000);
    if (extendStarted >= leaseEnd - CLOCK_SLACK_MS && !lastTry) return STALLED;
    t.same(await fetchWithin(consumer, 1, Math.max(0, leaseEnd - Date.now()) + 300), [], 'the extended redelivery is kept');
  });
});

t.test('a plain requeue keeps its place; a replacement envelope waits behind the queue', async (t) => {
  const broker = openBroker(t);
  const queue = uniqueName('queue');
  const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
  const [a, b] = [makeEnvelope(queue), makeEnvelope(queue)];
  await broker.publish([a, b]);
  const [firstA] = await fetchWithin(consumer, 1, 30_000);
  await broker.nack(firstA!, { requeue: true });
  const [againA] = await fetchWithin(consumer, 1, 30_000);
  t.equal(againA?.envelope.id, a.id, 'the requeued message is still first');
  t.equal(againA?.redeliveries, 1, 'a requeue counts as a redelivery');
  await broker.nack(againA!, { requeue: true, envelope: { ...againA!.envelope, attempt: 1 } });
  const rest = await fetchWithin(consumer, 2, 30_000);
  t.same(
    rest.map((d) => d.envelope.id),
    [b.id, a.id],
    'the retry goes behind b',
  );
  t.equal(rest[1]?.redeliveries, 0, 'a replacement is a new message');
});

t.test('priorities are clamped to 0–9 and compared across all the queues of a consumer', async (t) => {
  const broker = openBroker(t);
  const [queueA, queueB] = [uniqueName('queue'), uniqueName('queue')];
  const consumer = await broker.consumer({ queues: [queueA, queueB], consumerId: 'worker-1' });
  const low = makeEnvelope(queueA, { priority: -3 });
  const mid = makeEnvelope(queueA, { priority: 5 });
  const high = makeEnvelope(queueB, { priority: 42 });
  const nine = makeEnvelope(queueA, { priority: 9 });
  await broker.publish([low, mid, high, nine]);
  const deliveries = await fetchWithin(consumer, 10, 30_000);
  t.same(
    deliveries.map((d) => d.envelope.id),
    [high.id, nine.id, mid.id, low.id],
    '42 counts as 9 and keeps its publish order',
  );
  t.equal(deliveries[0]?.envelope.priority, 42, 'the envelope itself is not rewritten');
});

t.test('fetch hands out at most max deliveries', async (t) => {
  const broker = openBroker(t);
  const queue = uniqueName('queue');
  const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
  await broker.publish(Array.from({ length: 5 }, () => makeEnvelope(queue)));
  t.equal((await fetchWithin(consumer, 2, 30_000)).length, 2);
  t.equal((await fetchWithin(consumer, 10, 30_000)).length, 3);
  t.same(await fetchWithin(consumer, 0, 1_000), [], 'max 0 returns at once');
});

t.test('a delivered envelope is a copy: changing it does not change a redelivery', async (t) => {
  const broker = openBroker(t);
  const queue = uniqueName('queue');
  const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
  const envelope = makeEnvelope(queue, { visibilityTimeoutMs: 100 });
  await broker.publish([envelope]);
  envelope.headers.changed = 'by the producer';
  const [first] = await fetchWithin(consumer, 1, 30_000);
  first!.envelope.attempt = 7;
  first!.envelope.meta.changed = true;
  const [second] = await fetchWithin(consumer, 1, 30_000);
  t.equal(second?.envelope.attempt, 0);
  t.same(second?.envelope.meta, {});
  t.same(second?.envelope.headers, {});
});

t.test('thousands of delayed and leased messages hold no timer; a waiting consumer holds one', async (t) => {
  const broker = openBroker(t);
  const queue = uniqueName('queue');
  const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
  const before = countTimers();
  const now = Date.now();
  await broker.publish(Array.from({ length: 2_000 }, (_, i) => makeEnvelope(queue, { notBefore: now + 60_000 + i })));
  await broker.publish(Array.from({ length: 2_000 }, () => makeEnvelope(queue, { visibilityTimeoutMs: 60_000 })));
  t.equal((await fetchWithin(consumer, 5_000, 30_000)).length, 2_000);
  t.equal(countTimers(), before, 'no timer after publishing and leasing');
  const controller = new AbortController();
  const waiting = consumer.fetch(10, controller.signal);
  await sleep(20);
  t.equal(countTimers(), before + 1, 'one timer while waiting');
  controller.abort();
  t.same(await waiting, []);
  t.equal(countTimers(), before, 'released when the wait ends');
});

t.test('closing the broker ends waiting fetches with [] and refuses later calls', async (t) => {
  const broker = new MemoryBroker();
  const queue = uniqueName('queue');
  const consumer = await broker.consumer({ queues: [queue], consumerId: 'worker-1' });
  const waiting = consumer.fetch(10, new AbortController().signal);
  await sleep(20);
  await broker.close();
  t.same(await waiting, []);
  await t.rejects(consumer.fetch(10, new AbortController().signal), ClosedError);
  await t.rejects(broker.publish([makeEnvelope(queue)]), ClosedError);
  await t.rejects(broker.pending(queue), ClosedError);
  await t.resolves(broker.close(), 'closing twice is fine');
});

t.test('a closed consumer ends its waiting fetch with [] and refuses the next', async (t) => {
  const broker = openBroker(t);
  const consumer = await broker.consumer({ queues: [uniqueName('queue')], consumerId: 'worker-1' });
  const waiting = consumer.fetch(10, new AbortController().signal);
  await sleep(20);
  await consumer.close();
  t.same(await waiting, []);
  await t.rejects(consumer.fetch(10, new AbortController().signal), ClosedError);
});

t.test('a consumer needs a consumerId', async (t) => {
  const broker = openBroker(t);
  await t.rejects(broker.consumer({ queues: ['default'], consumerId: '' }), /consumerId/);
});
