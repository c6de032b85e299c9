import t from 'tap';
import { Stem, defineTask } from '../../sdk/index.js';
import { ServiceUnavailableError } from '../../sdk/errors.js';
import {
  RedisBroker,
  RedisLockStore,
  RedisRateLimiter,
  RedisResultBackend,
  RedisRevokeStore,
  RedisScheduleStore,
  redis,
  redisBroker,
  redisLockStore,
  redisRateLimiter,
  redisResultBackend,
  redisRevokeStore,
  redisScheduleStore,
} from '../../plugins/redis/index.js';
import type { TaskStatus } from '../../sdk/contracts/index.js';
import { fetchWithin, makeEnvelope, waitFor } from '../contract/support.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

t.test('a plugin whose server is unreachable fails Stem.create with ServiceUnavailableError', async (t) => {
  const error = await Stem.create({ plugins: [redis({ url: 'redis://:pw@127.0.0.1:1', connectTimeoutMs: 2_000 })] }).catch(
    (e: unknown) => e,
  );
  t.type(error, ServiceUnavailableError);
  t.notMatch((error as Error).message, /:pw@/);
});

if (await requireRedis(t)) {
  t.test('redis() provides all six services over one command connection, and stem.close() closes them', async (t) => {
    const namespace = testNamespace('plugin');
    t.teardown(() => deleteNamespace(namespace));
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
    t.type(stem.service('broker'), RedisBroker);
    t.type(stem.service('backend'), RedisResultBackend);
    t.type(stem.service('revokeStore'), RedisRevokeStore);
    t.type(stem.service('rateLimiter'), RedisRateLimiter);
    t.type(stem.service('scheduleStore'), RedisScheduleStore);
    t.type(stem.service('lockStore'), RedisLockStore);
    const connections = new Set(
      [stem.service('broker'), stem.service('backend'), stem.service('lockStore')].map((service) => (service as RedisBroker).connection),
    );
    t.equal(connections.size, 1, 'one shared connection');
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const count = async () =>
      ((await admin.call('CLIENT', 'LIST')) as string).split('\n').filter((line) => line.includes(`name=stem:${namespace}`)).length;
    t.equal(await count(), 1, 'one connection to Redis before any consumer or watch');
    await stem.close();
    t.equal(await count(), 0, 'closed with the plugin');
  });

  t.test('the single-service factories each provide their service, and a task runs end to end', async (t) => {
    const namespace = testNamespace('factories');
    t.teardown(() => deleteNamespace(namespace));
    const options = { url: REDIS_URL, namespace };
    const add = defineTask({ name: 'plugin.add', handler: async (args: { a: number; b: number }) => args.a + args.b });
    const stem = await Stem.create({
      plugins: [
        redisBroker(options),
        redisResultBackend(options),
        redisRevokeStore(options),
        redisRateLimiter(options),
        redisScheduleStore(options),
        redisLockStore(options),
      ],
      tasks: [add],
    });
    t.ok(
      ['broker', 'backend', 'revokeStore', 'rateLimiter', 'scheduleStore', 'lockStore'].every((name) => stem.provides(name as 'broker')),
    );
    const worker = stem.worker({ queues: ['sums'], concurrency: 2 });
    await worker.start();
    const handle = await stem.enqueue(add, { a: 2, b: 3 }, { queue: 'sums' });
    t.equal(await handle.result({ timeoutMs: 60_000 }), 5);
    await worker.stop();
    await stem.close();
  });

  t.test('a broker and backend on one connection write states and acks in one call; on separate ones they decline', async (t) => {
    const namespace = testNamespace('settle');
    t.teardown(() => deleteNamespace(namespace));
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
    t.teardown(() => stem.close());
    const broker = stem.service('broker') as RedisBroker;
    const backend = stem.service('backend') as RedisResultBackend;
    const consumer = await broker.consumer({ queues: ['settle'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const envelope = makeEnvelope('settle');
    await broker.publish([envelope]);
    const [delivery] = await fetchWithin(consumer, 1, 30_000);
    t.equal(delivery?.envelope.id, envelope.id);
    const heard: TaskStatus[] = [];
    const unwatch = await backend.watch(envelope.id, (status) => heard.push(status));
    t.teardown(unwatch);
    const status: TaskStatus = { id: envelope.id, state: 'succeeded', result: 42, attempt: 0, updatedAt: Date.now() };

    const elsewhere = await RedisResultBackend.connect(REDIS_URL, { namespace });
    t.teardown(() => elsewhere.close());
    t.equal(await broker.ackWithStates(elsewhere, [status], 60_000, [delivery!]), false, 'a backend on another connection is declined');
    t.equal(await backend.get(envelope.id), null, 'and nothing was written');
    t.equal(await broker.inflight('settle'), 1, 'nor acknowledged');

    t.equal(await broker.ackWithStates(backend, [status], 60_000, [delivery!]), true);
    t.same(await backend.get(envelope.id), status, 'the state is stored');
    t.ok(await waitFor(() => heard.length === 1), 'and published to watchers');
    t.equal(await broker.inflight('settle'), 0, 'the delivery is acknowledged');
    t.equal(await broker.pending('settle'), 0, 'and not queued again');
  });
}

if (await requireRedis(t)) {
  t.test('on a RESP2 connection, which takes no GET while subscribed, watchAndRead reads on the command connection', async (t) => {
    const { TaskWatchHub } = await import('../../plugins/redis/task-watch-hub.js');
    const { Redis } = await import('ioredis');
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const key = `${testNamespace('resp2')}:task`;
    t.teardown(() => admin.del(key));
    await admin.set(key, JSON.stringify({ id: 'x', state: 'running', attempt: 0, updatedAt: 1 }));
    const subscribers: InstanceType<typeof Redis>[] = [];
    const connection = {
      duplicate: async () => {
        const client = new Redis(REDIS_URL, { protocol: 2 });
        subscribers.push(client);
        return client;
      },
      closeDuplicate: (client: InstanceType<typeof Redis>) => client.disconnect(),
      subscriber: () => connection.duplicate(),
    };
    const hub = new TaskWatchHub(connection as never);
    t.teardown(() => hub.close());
    const heard: string[] = [];
    const { unsubscribe, raw } = await hub.watchAndRead(`${key}:events`, (status) => heard.push(status.state), key, admin);
    t.match(raw, /"running"/, 'the stored state, read on the fallback connection');
    await admin.publish(`${key}:events`, JSON.stringify({ id: 'x', state: 'succeeded', attempt: 0, updatedAt: 2 }));
    t.ok(await waitFor(() => heard.length === 1), 'and the watch is active');
    t.same(heard, ['succeeded']);
    await unsubscribe();
  });
}
