import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { DatabaseUnavailableError, Stem, defineTask } from '../../sdk/index.js';
import { RedisBroker, redis } from '../../plugins/redis/index.js';
import { keyPrefix, tagPart } from '../../plugins/redis/key-part.js';
import { QueueKeys } from '../../plugins/redis/queue-keys.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from './redis-test-support.js';
import { runStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';

// Every Redis write lands where it was meant to, or nowhere: a db the server refuses is an error
// (at connect, and on a reconnect), and no two namespaces and queues share a key.

const server = new URL(REDIS_URL);
const MISSING_DB_URL = `redis://${server.host}/99`;

t.test('names without separators keep their keys; names with them cannot pass for another split', async (t) => {
  t.equal(keyPrefix('stem'), 'stem');
  t.equal(tagPart('eu:emails'), 'eu:emails', 'a colon closing the tag stays, so such queues keep their keys');
  t.equal(new QueueKeys('stem', 'broadcast://control').tag, '{stem:broadcast://control}', 'broadcast keys do not move');
  t.equal(keyPrefix('billing:eu'), 'billing%3Aeu');
  t.equal(tagPart('a}b{c%'), 'a%7Db%7Bc%25');
  t.not(new QueueKeys(keyPrefix('billing'), 'eu:emails').tag, new QueueKeys(keyPrefix('billing:eu'), 'emails').tag);
  t.not(
    new QueueKeys(keyPrefix('stem'), 'q%3A').tag,
    new QueueKeys(keyPrefix('stem'), 'q:').tag,
    "'%' is encoded too, so an encoded name cannot be typed by hand",
  );
  const consumerLeases = new QueueKeys('stem', 'broadcast://q').leases('x}:s:b');
  const otherStream = new QueueKeys('stem', 'broadcast://q}:leases:x').streams[0];
  t.not(consumerLeases, otherStream, "a '}' in a name cannot close the hash tag early and pose as another key");
});

if (await requireRedis(t)) {
  t.test('a db the server does not have is DatabaseUnavailableError at connect, and nothing is written', async (t) => {
    const namespace = testNamespace('nodb');
    const error = await RedisBroker.connect(MISSING_DB_URL, { namespace }).then(
      (broker) => broker.close(),
      (thrown: unknown) => thrown,
    );
    t.type(error, DatabaseUnavailableError);
    t.match(
      (error as DatabaseUnavailableError).message,
      /redis:\/\/.*\/99: the server refused database 99 .*use a db index the server has/,
    );
    t.equal((error as DatabaseUnavailableError).exitCode, 69);
    await t.rejects(
      Stem.create({ plugins: [redis({ url: MISSING_DB_URL, namespace })] }),
      DatabaseUnavailableError,
      'Stem.create fails the same way',
    );
    t.same(await keysOf(new Redis(`redis://${server.host}/0`), namespace), [], 'db 0 holds nothing of this namespace');
  });

  t.test('the CLI exits 69 with one line naming the URL, password masked, for a db the server does not have', async (t) => {
    const namespace = testNamespace('nodbcli');
    const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' };
    const url = `redis://:hunter2@${server.host}/99?namespace=${namespace}`;
    const health = await runStem(['health', '--broker', url, '--backend', REDIS_URL], { env });
    const enqueue = await runStem(
      ['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--registry', 'fixtures/cli-tasks.ts', '--broker', url, '--backend', REDIS_URL],
      { env },
    );
    for (const [name, run] of [
      ['health', health],
      ['enqueue', enqueue],
    ] as const) {
      t.equal(run.code, 69, `${name} exits 69: ${run.stdout}${run.stderr}`);
      t.match(
        run.stderr,
        /^stem: redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/99: the server refused database 99/,
        `${name} names the URL and the problem`,
      );
      t.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line, no stack`);
      t.notMatch(run.stdout + run.stderr, /hunter2/, `${name}: the password is masked`);
    }
    t.same(await keysOf(new Redis(`redis://${server.host}/0`), namespace), [], 'db 0 holds nothing of this namespace');
  });

  t.test(
    'namespace "billing" with queue "eu:emails" and namespace "billing:eu" with queue "emails" never see each other\'s tasks',
    async (t) => {
      const base = testNamespace('iso');
      const apps = [
        { name: 'A', namespace: base, queue: 'eu:emails' },
        { name: 'B', namespace: `${base}:eu`, queue: 'emails' },
      ];
      t.teardown(async () => {
        for (const app of apps) await deleteNamespace(keyPrefix(app.namespace));
      });
      const ran = new Map<string, string[]>();
      const stems = await Promise.all(
        apps.map(async (app) => {
          const record = (what: string) => async (args: { n: number }) => {
            const key = `${app.name}:${what}:${args.n}`;
            ran.set(key, [...(ran.get(key) ?? []), app.name]);
            return `${app.name} ${what} ${args.n}`;
          };
          const mail = defineTask({ name: 'iso.mail', handler: record('mail') });
          const other = defineTask({ name: 'iso.other', handler: record('other') });
          const stem = await Stem.create({
            plugins: [redis({ url: REDIS_URL, namespace: app.namespace, blockMs: 500 })],
            tasks: [mail, other],
          });
          t.teardown(() => stem.close());
          return stem;
        }),
      );
      const handles = await Promise.all(
        stems.map(async (stem, i) => {
          const mails = await stem.enqueueMany(
            Array.from({ length: 5 }, (_, n) => ({ task: 'iso.mail', args: { n }, options: { queue: apps[i]!.queue } })),
          );
          const others = await stem.enqueueMany(Array.from({ length: 5 }, (_, n) => ({ task: 'iso.other', args: { n } })));
          return [...mails, ...others];
        }),
      );
      for (const [i, stem] of stems.entries()) {
        t.equal(await stem.broker.pending(apps[i]!.queue), 5, `app ${apps[i]!.name} sees its own 5 tasks on its queue, not the other's`);
      }
      await Promise.all(stems.map((stem, i) => stem.worker({ queues: [apps[i]!.queue, 'default'], concurrency: 4 }).start()));
      for (const [i, list] of handles.entries()) {
        const results = await Promise.all(list.map((handle) => handle.result({ timeoutMs: 60_000 })));
        t.ok(
          results.every((result) => String(result).startsWith(`${apps[i]!.name} `)),
          `app ${apps[i]!.name}'s tasks ran on its own worker`,
        );
      }
      t.equal(ran.size, 20, 'every task ran');
      t.ok(
        [...ran.entries()].every(([key, runs]) => runs.length === 1 && key.startsWith(`${runs[0]}:`)),
        'each once, by its own app',
      );
      const keysB = await keysOf(await adminClient(), keyPrefix(apps[1]!.namespace));
      t.ok(keysB.length > 0 && keysB.every((key) => key.includes(keyPrefix(apps[1]!.namespace))), "B's keys carry B's encoded namespace");
    },
  );

  t.test('task ids with separators cannot collide across namespaces ("base" + "a:task:b" against "base:task:a" + "b")', async (t) => {
    const base = testNamespace('ids');
    const apps = [
      { name: 'A', namespace: base, id: 'a:task:b' },
      { name: 'C', namespace: `${base}:task:a`, id: 'b' },
    ];
    t.teardown(async () => {
      for (const app of apps) await deleteNamespace(keyPrefix(app.namespace));
    });
    const stems = await Promise.all(
      apps.map(async (app) => {
        const task = defineTask({ name: 'ids.who', handler: async () => app.name });
        const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace: app.namespace, blockMs: 500 })], tasks: [task] });
        t.teardown(() => stem.close());
        return stem;
      }),
    );
    const handles = await Promise.all(stems.map((stem, i) => stem.enqueue('ids.who', {}, { id: apps[i]!.id })));
    await Promise.all(stems.map((stem) => stem.worker().start()));
    for (const [i, handle] of handles.entries())
      t.equal(await handle.result({ timeoutMs: 60_000 }), apps[i]!.name, `${apps[i]!.name}'s task keeps its own result`);
    for (const [i, stem] of stems.entries()) t.equal((await stem.status(apps[i]!.id)).result, apps[i]!.name);
  });

  t.test('a reconnect to a server that no longer has the db writes nothing to db 0, then goes on where it should', async (t) => {
    const port = await freePort();
    let redisServer = await startRedis(t, port, 16);
    const namespace = testNamespace('reselect');
    const url = `redis://127.0.0.1:${port}/9`;
    const ran: number[] = [];
    const task = defineTask({ name: 'reselect.run', handler: async (args: { n: number }) => void ran.push(args.n) });
    const stem = await Stem.create({ plugins: [redis({ url, namespace, blockMs: 200 })], tasks: [task] });
    t.teardown(() => stem.close());
    await stem.worker({ queues: ['q'] }).start();
    await (await stem.enqueue(task, { n: 1 }, { queue: 'q' })).result({ timeoutMs: 60_000 });

    const connection = (stem.broker as RedisBroker).connection;
    let refusals = 0;
    connection.client.on('error', (error: Error & { command?: { name: string } }) => {
      if (error.command?.name === 'select') refusals++;
    });
    await stopRedis(redisServer);
    redisServer = await startRedis(t, port, 4);
    await waitFor(() => connection.error instanceof DatabaseUnavailableError, 'the refused SELECT on reconnect', 60_000);
    t.match(connection.error!.message, /refused database 9/);
    let settled = false;
    const during = stem
      .enqueue(task, { n: 2 }, { queue: 'q' })
      .then(
        (handle) => handle.id,
        (error: Error) => error,
      )
      .finally(() => (settled = true));
    const seen = refusals;
    // Two more refusals after the enqueue was issued: it had a full reconnect to land on db 0.
    await waitFor(() => settled || refusals >= seen + 2, 'two more reconnects', 60_000);
    const admin0 = new Redis(`redis://127.0.0.1:${port}/0`);
    admin0.on('error', () => undefined);
    t.equal(await admin0.dbsize(), 0, 'db 0 stays empty while the db is refused (no enqueue, no consumer group)');

    await stopRedis(redisServer);
    redisServer = await startRedis(t, port, 16);
    const outcome = await during;
    t.ok(
      typeof outcome === 'string' || outcome instanceof Error,
      'the enqueue made during the outage landed on db 9 or failed, never silently elsewhere',
    );
    await (await stem.enqueue(task, { n: 3 }, { queue: 'q' })).result({ timeoutMs: 60_000 });
    t.ok(ran.includes(3), 'after the server has db 9 again, tasks run');
    t.equal(await admin0.dbsize(), 0, 'db 0 is still empty');
    admin0.disconnect();
    await stem.close();
  });
}

/** Every key of a namespace (given as its key prefix) in the db `client` is on; disconnects it. */
async function keysOf(client: Redis, prefix: string): Promise<string[]> {
  try {
    const keys: string[] = [];
    for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) keys.push(...(await client.keys(pattern)));
    return keys;
  } finally {
    client.disconnect();
  }
}

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Starts a private, throwaway redis-server (the shared one's `databases` cannot change at run time). */
async function startRedis(t: Test, port: number, databases: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--databases', String(databases)],
    {
      stdio: 'ignore',
    },
  );
  t.teardown(() => stopRedis(child));
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  try {
    await waitFor(async () => (await probe.ping().catch(() => '')) === 'PONG', `redis-server on port ${port}`, 60_000);
  } finally {
    probe.disconnect();
  }
  return child;
}

/** Stops a server started by {@link startRedis} and waits for it to exit. */
async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
