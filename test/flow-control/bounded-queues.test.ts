import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { routing } from '../../plugins/routing/index.js';
import {
  MemoryBroker,
  QUEUE_FULL_DROPPED_REASON,
  QueueFullError,
  Stem,
  type StemPlugin,
  TaskCancelledError,
  UnsupportedCapabilityError,
} from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName } from '../contract/support.js';
import { REDIS_URL, adminClient, requireRedis } from '../redis/redis-test-support.js';

/** A routing config in code with one bounded queue that takes every `bounded.*` task. */
function boundedRouting(queue: string, maxLength: number, overflow: string): StemPlugin {
  return routing({ config: { queues: { [queue]: { routing_key: 'bounded.*', max_length: maxLength, overflow } } } });
}

async function deleteQueueKeys(queue: string): Promise<void> {
  const client = await adminClient();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{stem:${queue}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** The brokers to run the end-to-end cases on: memory always, Redis when it answers. */
const brokers: Array<{ name: string; plugins: () => StemPlugin[]; cleanup: (queue: string) => Promise<void> }> = [
  { name: 'memory', plugins: () => [], cleanup: async () => undefined },
];
if (await requireRedis(t)) {
  brokers.push({ name: 'redis', plugins: () => [redis({ url: REDIS_URL })], cleanup: deleteQueueKeys });
}

for (const broker of brokers) {
  t.test(
    `${broker.name}: a full reject queue (routing max_length) refuses the enqueue with QueueFullError and leaves no state`,
    async (t) => {
      const queue = uniqueName('bounded');
      t.teardown(() => broker.cleanup(queue));
      const stem = await Stem.create({ plugins: [...broker.plugins(), boundedRouting(queue, 2, 'reject')] });
      t.teardown(() => stem.close());
      const accepted = await stem.enqueueMany([
        { task: 'bounded.job', args: { n: 1 } },
        { task: 'bounded.job', args: { n: 2 } },
      ]);
      t.equal(accepted[0]!.envelope!.queue, queue);
      const error = await stem.enqueue('bounded.job', { n: 3 }).catch((caught: unknown) => caught);
      t.ok(error instanceof QueueFullError, 'QueueFullError');
      t.match((error as Error).message, new RegExp(`queue "${queue}" is full \\(maxLength 2, overflow reject\\)`));
      const [refusedId] = (error as QueueFullError).taskIds;
      t.equal(await stem.backend.get(refusedId!), null, 'the refused task has no state');
      t.equal((await stem.backend.get(accepted[0]!.id))?.state, 'queued', 'the accepted ones are queued');
      t.equal(await stem.broker.pending(queue), 2);
    },
  );

  t.test(`${broker.name}: drop-oldest cancels the dropped task (a wait on it ends) and keeps it as a dead letter`, async (t) => {
    const queue = uniqueName('bounded');
    t.teardown(() => broker.cleanup(queue));
    const stem = await Stem.create({ plugins: [...broker.plugins(), boundedRouting(queue, 2, 'drop-oldest')] });
    t.teardown(() => stem.close());
    const oldest = await stem.enqueue('bounded.job', { n: 1 });
    await stem.enqueue('bounded.job', { n: 2 });
    const newest = await stem.enqueue('bounded.job', { n: 3 });
    const outcome = await oldest.result({ timeoutMs: 60_000 }).catch((caught: unknown) => caught);
    t.ok(outcome instanceof TaskCancelledError, 'waiting on the dropped task ends: it was cancelled');
    t.match((outcome as Error).message, /dropped: queue .* was full \(maxLength 2, overflow drop-oldest\)/);
    const status = await stem.backend.get(oldest.id);
    t.equal(status?.state, 'cancelled');
    t.equal(status?.error?.code, 'queue-full');
    const letter = await stem.broker.getDeadLetter(queue, oldest.id);
    t.equal(letter?.reason, QUEUE_FULL_DROPPED_REASON, 'a dead letter with its reason');
    t.equal((await stem.backend.get(newest.id))?.state, 'queued', 'the newest is queued');
  });

  t.test(`${broker.name}: a drop-oldest publish refused part-way still cancels what it dropped`, async (t) => {
    const queue = uniqueName('bounded');
    t.teardown(() => broker.cleanup(queue));
    const stem = await Stem.create({ plugins: [...broker.plugins(), boundedRouting(queue, 2, 'drop-oldest')] });
    t.teardown(() => stem.close());
    await stem.enqueue('bounded.job', { n: 1 }, { notBefore: '1h' });
    const ready = await stem.enqueue('bounded.job', { n: 2 });
    const error = await stem
      .enqueueMany([
        { task: 'bounded.job', args: { n: 3 }, options: { notBefore: '1h' } },
        { task: 'bounded.job', args: { n: 4 } },
      ])
      .catch((caught: unknown) => caught);
    t.ok(error instanceof QueueFullError, 'the last one found nothing left to drop');
    const dropped = (await stem.broker.listDeadLetters(queue)).entries.map((letter) => letter.id);
    for (const id of dropped) t.equal((await stem.backend.get(id))?.state, 'cancelled', `dropped task ${id} ended cancelled`);
    if (dropped.length > 0) t.same(dropped, [ready.id], 'only the ready one was dropped');
  });
}

t.test('a broker without the boundedQueues capability refuses a bounded queue at configuration', async (t) => {
  const broker = new MemoryBroker();
  Object.defineProperty(broker, 'boundedQueues', { value: undefined });
  const plugin: StemPlugin = { name: 'plain-broker', apply: (stem) => stem.provide('broker', broker) };
  const error = await Stem.create({ plugins: [plugin, boundedRouting('jobs', 5, 'reject')] }).catch((caught: unknown) => caught);
  t.ok(error instanceof UnsupportedCapabilityError, 'UnsupportedCapabilityError at Stem.create');
  t.match((error as Error).message, /queue "jobs" with max_length needs the broker capability "boundedQueues"/);
});

t.test('a bad max_length or overflow is a configuration error naming the key', async (t) => {
  t.throws(() => routing({ config: { queues: { jobs: { max_length: 0 } } } }), /queues\.jobs\.max_length/);
  t.throws(() => routing({ config: { queues: { jobs: { max_length: 10, overflow: 'drop-newest' } } } }), /reject or drop-oldest/);
  t.throws(() => routing({ config: { queues: { jobs: { overflow: 'reject' } } } }), /overflow needs max_length/);
});

if (brokers.length > 1) {
  t.test('stem enqueue to a full queue exits non-zero with the one-line QueueFullError', async (t) => {
    const queue = uniqueName('bounded');
    t.teardown(() => deleteQueueKeys(queue));
    const dir = mkdtempSync(join(tmpdir(), 'stem-bounded-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'routing.yaml');
    // math.add is a task of the repository's stem.config.ts, which the CLI loads here.
    writeFileSync(file, `queues:\n  ${queue}:\n    routing_key: math.*\n    max_length: 1\n`);
    const flags = ['--broker', REDIS_URL, '--routing-config', file, '--args', '{"a":1,"b":2}'];
    const first = await runInProcess(['enqueue', 'math.add', ...flags]);
    t.equal(first.code, 0, first.stderr);
    const second = await runInProcess(['enqueue', 'math.add', ...flags]);
    t.not(second.code, 0, 'non-zero exit');
    t.match(second.stderr, new RegExp(`queue "${queue}" is full \\(maxLength 1, overflow reject\\)`));
    t.equal(second.stderr.trim().split('\n').length, 1, 'one line');
  });
}
