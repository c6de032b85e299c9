import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import type { Redis } from 'ioredis';
import t from 'tap';
import { RedisBroker } from '../../plugins/redis/index.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';

/**
 * A TCP proxy to the test Redis that can turn into a black hole: swallow() drops every connection
 * it carries, then accepts new ones and never answers them (a frozen server, a load balancer whose
 * backend is gone).
 */
async function blackHoleProxy(target: URL) {
  const sockets = new Set<Socket>();
  let swallowing = false;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const server = createServer((client) => {
    track(client);
    if (swallowing) return;
    const upstream = connect(Number(target.port || 6379), target.hostname);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}${target.pathname}`,
    swallow(): void {
      swallowing = true;
      for (const socket of sockets) socket.destroy();
    },
    close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Kills the connection of `namespace` with `role` (CLIENT KILL); returns how many were killed. */
async function killConnection(admin: Redis, namespace: string, role: string): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  const id = list
    .split('\n')
    .find((line) => line.includes(` name=stem:${namespace}:${role} `))
    ?.match(/id=(\d+)/)?.[1];
  return Number(await admin.call('CLIENT', 'KILL', 'ID', id ?? '0'));
}

if (await requireRedis(t)) {
  t.test('close ends when the connection dropped and the server accepts a new one but never answers', async (t) => {
    const proxy = await blackHoleProxy(new URL(REDIS_URL));
    t.teardown(() => proxy.close());
    const namespace = testNamespace('black-hole');
    t.teardown(() => deleteNamespace(namespace));
    const broker = await RedisBroker.connect(proxy.url, { namespace });
    t.equal(await broker.inflight('q'), 0, 'answered through the proxy');
    const client = broker.connection.client as Redis;
    proxy.swallow();
    // ioredis reconnects to the proxy, which takes the connection and never answers its handshake
    while (client.status !== 'connect') await new Promise((resolve) => setTimeout(resolve, 5));
    // A command waits in ioredis' offline queue for the connection to be ready; so does QUIT, behind it.
    const stuck = client.get(`${namespace}:x`).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setImmediate(resolve));
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      broker.close().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 30_000);
      }),
    ]);
    clearTimeout(timer);
    t.ok(ended, 'close ended');
    if (!ended) client.disconnect();
    t.not(await stuck, 'answered', 'the queued command failed once the connection was dropped');
  });

  t.test('closing right after a subscriber connection came back leaves no unhandled rejection', async (t) => {
    const namespace = testNamespace('resubscribe');
    t.teardown(() => deleteNamespace(namespace));
    const broker = await RedisBroker.connect(REDIS_URL, { namespace });
    const consumer = await broker.consumer({ queues: ['q'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const wake = await (broker.dueSignal as unknown as { subscriber: Promise<Redis> }).subscriber;
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const closed = new Promise<void>((resolve) => {
      // Once the connection is back its channels are subscribed again: the reply is never read (the
      // socket is paused), and the close drops the connection with that SUBSCRIBE under way.
      wake.once('ready', () => {
        wake.stream.pause();
        void broker.close().then(resolve);
      });
    });
    t.equal(await killConnection(admin, namespace, 'wake'), 1, 'the wake connection was killed');
    await closed;
    // ioredis destroys the paused socket 2 s after its end and fails what was under way; an
    // unhandled rejection then fails the test
    while (wake.status !== 'end') await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.equal(wake.status, 'end', 'the wake connection is closed');
  });

  t.test('a killed wake connection subscribes to its channels again', async (t) => {
    const namespace = testNamespace('rewake');
    const broker = await RedisBroker.connect(REDIS_URL, { namespace });
    t.teardown(async () => {
      await broker.close();
      await deleteNamespace(namespace);
    });
    const consumer = await broker.consumer({ queues: ['q'], consumerId: 'w1' });
    t.teardown(() => consumer.close());
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const channel = `${broker.keys('q').tag}:wake`;
    const subscribers = async () => Number(((await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]);
    t.equal(await subscribers(), 1, 'subscribed');
    const wake = await (broker.dueSignal as unknown as { subscriber: Promise<Redis> }).subscriber;
    const back = new Promise((resolve) => wake.once('ready', resolve));
    t.equal(await killConnection(admin, namespace, 'wake'), 1, 'the wake connection was killed');
    await back;
    // a ceiling of 60 s (was 2 s): the resubscribe follows 'ready', and a loaded machine can take seconds for it
    for (let i = 0; i < 6_000 && (await subscribers()) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    t.equal(await subscribers(), 1, 'subscribed again after the reconnect');
  });
}
