import t from 'tap';
import { RedisBroker } from '../../plugins/redis/index.js';
import { makeEnvelope } from '../contract/support.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

/** How many tasks go through the queue (STEM_MEMORY_TASKS to change; 100k by default). */
const TASKS = Number(process.env.STEM_MEMORY_TASKS ?? 100_000);
const BATCH = 500;

if (await requireRedis(t)) {
  t.test(`${TASKS} acknowledged tasks leave the queue's Redis memory bounded`, async (t) => {
    const namespace = testNamespace('memory');
    const queue = 'memory';
    const broker = await RedisBroker.connect(REDIS_URL, { namespace });
    const admin = await adminClient();
    t.teardown(async () => {
      await broker.close();
      admin.disconnect();
      await deleteNamespace(namespace);
    });
    const keys = broker.keys(queue);
    const consumer = await broker.consumer({ queues: [queue], consumerId: 'memory-worker' });
    const queueMemory = async (): Promise<number> => {
      let total = 0;
      for (const key of [...keys.streams, keys.leases(''), keys.delayed])
        total += Number((await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
      return total;
    };
    const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec((await admin.info('memory')) as string)?.[1]);

    const beforeQueue = await queueMemory();
    const beforeUsed = await usedMemory();
    let peakQueue = 0;
    let done = 0;
    const controller = new AbortController();
    while (done < TASKS) {
      await broker.publish(Array.from({ length: BATCH }, (_, i) => makeEnvelope(queue, { args: { i, pad: 'x'.repeat(64) } })));
      if (done % 20_000 === 0) peakQueue = Math.max(peakQueue, await queueMemory());
      let fetched = 0;
      while (fetched < BATCH) {
        const deliveries = await consumer.fetch(BATCH - fetched, controller.signal);
        fetched += deliveries.length;
        await broker.ack(deliveries);
      }
      done += BATCH;
    }
    const afterQueue = await queueMemory();
    const afterUsed = await usedMemory();
    const streamLengths = await Promise.all(keys.streams.map((key) => admin.xlen(key)));
    t.comment(
      `queue keys MEMORY USAGE: before ${beforeQueue} B, peak with ${BATCH} in flight ${peakQueue} B, after ${TASKS} acked ${afterQueue} B`,
    );
    t.comment(`INFO used_memory: before ${beforeUsed} B, after ${afterUsed} B (delta ${afterUsed - beforeUsed} B, whole server)`);
    t.same(
      streamLengths,
      keys.streams.map(() => 0),
      'every acknowledged entry was deleted from its stream',
    );
    t.equal(await admin.zcard(keys.leases('')), 0, 'no lease is left behind');
    t.ok(
      afterQueue < 64 * 1024,
      `the queue's keys hold ${afterQueue} B after ${TASKS} tasks (bounded: not proportional to the task count)`,
    );
    await consumer.close();
  });
}
