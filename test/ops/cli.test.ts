import t from 'tap';
import { Redis } from 'ioredis';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { runStem, startStem, type RunningStem } from '../helpers/run-stem.js';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName, waitFor } from '../helpers/wait.js';

// As an operator runs it: two workers in processes of their own, and each command in another process. The
// first ping and enqueue run the real binary; the other one-shot commands run in this test process
// (runInProcess, the binary's own main()), which is another process than the workers' and costs no node start-up.
const config = ['--config', 'test/ops/fixtures/ops.config.ts'];
const env = {
  STEM_BROKER_URL: REDIS_URL,
  STEM_RESULT_BACKEND_URL: REDIS_URL,
  STEM_REVOKE_STORE_URL: REDIS_URL,
  STEM_CONTROL_NAMESPACE: '',
};
/** The --timeout of a request to named workers (-w): it ends once they answered, so only a lost reply reaches it. */
const REPLY_CEILING = '30s';
const commands = ['ping', 'stats', 'inspect', 'revoke', 'pause', 'resume', 'shutdown', 'rate-limit'];

/** Deletes the keys of one test: its queue and control namespace share the unique name `id`. */
async function deleteKeysOf(id: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${id}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
    for (const set of ['stem:queues', 'stem:broadcasts']) {
      const members = (await client.smembers(set)).filter((member) => member.includes(id));
      if (members.length > 0) await client.srem(set, ...members);
    }
  } finally {
    client.disconnect();
  }
}

t.test('every worker operations command has --help with an example', async (t) => {
  for (const command of commands) {
    const help = await runInProcess(['worker', command, '--help']);
    t.equal(help.code, 0, `worker ${command} --help exits 0`);
    t.match(help.stdout, new RegExp(`Examples[\\s\\S]*\\$ stem worker ${command} `), `worker ${command} --help shows an example`);
  }
});

t.test('ping, stats, inspect, revoke, pause, resume, rate-limit and shutdown reach two workers in other processes', async (t) => {
  if (!(await requireRedis(t))) return;
  const id = uniqueName('ops');
  const flags = [...config, '--namespace', id];
  t.teardown(() => deleteKeysOf(id));
  const workers: RunningStem[] = [];
  t.teardown(() => Promise.all(workers.map((worker) => worker.stop('SIGKILL'))));
  for (const host of ['host-a', 'host-b']) {
    const worker = await startStem(['worker', 'start', '--queues', id, '--concurrency', '2', '--hostname', host, ...flags], { env });
    workers.push(worker);
  }
  await Promise.all(workers.map((worker) => worker.waitForOutput(/ready on/)));

  // A broadcast collects for its whole --timeout: asked again until both answered, so that a slow machine cannot fail it.
  // Later requests name both workers (-w), and end as soon as both answered, with a timeout only a lost reply reaches.
  type Pong = { workerId: string; hostname: string; pid: number; queues: string[]; uptimeMs: number };
  let pongs: Pong[] = [];
  await waitFor(async () => {
    const ping = await runStem(['worker', 'ping', '--timeout', '2s', '--json', ...flags], { env });
    pongs = ping.code === 0 ? (JSON.parse(ping.stdout) as Pong[]) : [];
    return pongs.length >= 2;
  }, 'both workers to answer a ping');
  t.same(pongs.map((pong) => pong.hostname).sort(), ['host-a', 'host-b'], 'both workers answer');
  t.same(new Set(pongs.map((pong) => pong.pid)).size, 2, 'from two processes');
  t.ok(pongs.every((pong) => pong.queues.includes(id) && pong.uptimeMs >= 0));
  const workerA = pongs.find((pong) => pong.hostname === 'host-a')!.workerId;
  const both = [...pongs.flatMap((pong) => ['-w', pong.workerId]), '--timeout', REPLY_CEILING];
  const table = await runInProcess(['worker', 'ping', ...both, ...flags], { env });
  t.match(table.stdout, /2 worker\(s\) replied/);

  const one = await runInProcess(['worker', 'ping', '-w', workerA, '--json', ...flags], { env });
  t.same(
    (JSON.parse(one.stdout) as Array<{ workerId: string }>).map((pong) => pong.workerId),
    [workerA],
    '-w targets one worker',
  );

  const held = await runStem(['enqueue', 'ops.hold', '--args', '{"ms":60000}', '--queue', id, '--json', ...flags], { env });
  const [{ id: heldId }] = JSON.parse(held.stdout) as [{ id: string }];
  await waitFor(async () => {
    const inspect = await runInProcess(['worker', 'inspect', '--json', ...both, ...flags], { env });
    return inspect.code === 0 && inspect.stdout.includes(heldId);
  }, 'inspect shows the held task');
  const inspect = await runInProcess(['worker', 'inspect', ...both, '--json', ...flags], { env });
  const views = JSON.parse(inspect.stdout) as Array<{
    workerId: string;
    active: Array<{ id: string; name: string; runtimeMs: number }>;
    reserved: unknown[];
  }>;
  t.equal(views.length, 2, 'both workers are inspected');
  const running = views.find((view) => view.active.some((task) => task.id === heldId))!;
  t.match(running.active[0], { id: heldId, name: 'ops.hold', runtimeMs: Number });

  const stats = await runInProcess(['worker', 'stats', ...both, '--json', ...flags], { env });
  const counters = JSON.parse(stats.stdout) as Array<{
    workerId: string;
    inflight: number;
    concurrency: number;
    processed: number;
    memory: { rssBytes: number };
  }>;
  t.equal(counters.length, 2, 'stats from both workers');
  t.same(counters.map((each) => each.inflight).sort(), [0, 1]);
  t.ok(counters.every((each) => each.concurrency === 2 && each.memory.rssBytes > 0));
  const statsTable = await runInProcess(['worker', 'stats', ...both, ...flags], { env });
  t.match(statsTable.stdout, /worker\W+processed\W+succeeded\W+failed\W+in-flight/, 'a table for people');
  t.match(statsTable.stdout, workerA);

  const revoked = await runInProcess(['worker', 'revoke', heldId, '--terminate', ...both, ...flags], { env });
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stdout, new RegExp(`terminated ${heldId} on ${running.workerId}`));
  const state = await runInProcess(['result', 'get', heldId, '--json', ...flags], { env });
  t.match(JSON.parse(state.stdout), { state: 'cancelled', error: { message: /revoked/ } }, 'the aborted task is cancelled');

  // Pause, resume and rate-limit go to every worker (stored for later ones): each is idempotent, and sent again until
  // both workers answered within one broadcast's --timeout.
  const toBoth = async (args: string[], replied: RegExp) => {
    let outcome = await runInProcess([...args, '--timeout', '2s', ...flags], { env });
    await waitFor(
      async () => {
        if (replied.test(outcome.stdout)) return true;
        outcome = await runInProcess([...args, '--timeout', '2s', ...flags], { env });
        return false;
      },
      `both workers to answer ${args.join(' ')}`,
    );
    return outcome;
  };
  const paused = await toBoth(['worker', 'pause', '--queue', id], /on 2 worker\(s\)/);
  t.match(paused.stdout, new RegExp(`paused ${id} on 2 worker\\(s\\)`));
  const waiting = await runInProcess(['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--queue', id, '--json', ...flags], { env });
  const [{ id: waitingId }] = JSON.parse(waiting.stdout) as [{ id: string }];
  const stillQueued = await runInProcess(['result', 'wait', waitingId, '--timeout', '1s', ...flags], { env });
  t.not(stillQueued.code, 0, 'a task on a paused queue does not run');
  const resumed = await toBoth(['worker', 'resume', '--queue', id], /on 2 worker\(s\)/);
  t.match(resumed.stdout, new RegExp(`resumed ${id} on 2 worker\\(s\\)`));
  const done = await runInProcess(['result', 'wait', waitingId, '--timeout', '60s', '--json', ...flags], { env });
  t.equal(JSON.parse(done.stdout).result, 3, 'after resume it runs');

  const limited = await toBoth(['worker', 'rate-limit', 'cli.add', '10/s'], /2 live worker\(s\) updated/);
  t.match(limited.stdout, /rate limit of cli.add: 10\/s; 2 live worker\(s\) updated/);
  const badRate = await runInProcess(['worker', 'rate-limit', 'cli.add', 'fast', ...flags], { env });
  t.equal(badRate.code, 64, 'a bad rate is a usage error');
  t.match(badRate.stderr, /"fast" is not a rate; use tasks per unit like '10\/s'/);

  const refused = await runInProcess(['worker', 'shutdown', '-w', workerA, ...flags], { env });
  t.equal(refused.code, 64, 'shutdown asks for --yes without a TTY');
  const shutdown = await runInProcess(['worker', 'shutdown', '-w', workerA, '--yes', '--timeout', REPLY_CEILING, ...flags], { env });
  t.match(shutdown.stdout, new RegExp(`shutting down 1 worker\\(s\\) \\(warm\\): ${workerA}`));
  const exitA = await new Promise<number>((resolve) => {
    if (workers[0]!.child.exitCode !== null) resolve(workers[0]!.child.exitCode);
    else workers[0]!.child.on('exit', (code) => resolve(code ?? 1));
  });
  t.equal(exitA, 0, 'the worker exits cleanly');
  // A broadcast again (the stopped worker must not answer it): asked until the live one answered.
  let after: Array<{ hostname: string }> = [];
  await waitFor(async () => {
    const ping = await runInProcess(['worker', 'ping', '--timeout', '1s', '--json', ...flags], { env });
    after = ping.code === 0 ? (JSON.parse(ping.stdout) as Array<{ hostname: string }>) : [];
    return after.length > 0;
  }, 'the live worker to answer a ping');
  t.same(
    after.map((pong) => pong.hostname),
    ['host-b'],
    'the stopped worker no longer answers',
  );
});

t.test('with no worker alive, ping says why and exits 1; a revoke is stored for later workers', async (t) => {
  if (!(await requireRedis(t))) return;
  const id = uniqueName('ops');
  const flags = [...config, '--namespace', id];
  t.teardown(() => deleteKeysOf(id));
  const ping = await runInProcess(['worker', 'ping', '--timeout', '300ms', ...flags], { env });
  t.equal(ping.code, 1);
  t.match(ping.stderr, new RegExp(`no worker replied within 300ms on control namespace "${id}"`));

  const queued = await runInProcess(['enqueue', 'cli.add', '--args', '{"a":1,"b":1}', '--queue', id, '--json', ...flags], { env });
  const [{ id: taskId }] = JSON.parse(queued.stdout) as [{ id: string }];
  const revoked = await runInProcess(['worker', 'revoke', taskId, '--timeout', '300ms', ...flags], { env });
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stdout, new RegExp(`revoked ${taskId}; 0 live worker\\(s\\) told`));
  const marker = await runInProcess(['enqueue', 'cli.add', '--args', '{"a":2,"b":2}', '--queue', id, '--json', ...flags], { env });
  const [{ id: markerId }] = JSON.parse(marker.stdout) as [{ id: string }];
  const worker = await startStem(['worker', 'start', '--queues', id, ...flags], { env });
  t.teardown(() => worker.stop('SIGKILL'));
  const done = await runInProcess(['result', 'wait', markerId, '--timeout', '60s', '--json', ...flags], { env });
  t.equal(JSON.parse(done.stdout).result, 4);
  t.notMatch(worker.output(), new RegExp(`cli.add\\[${taskId}\\] succeeded`), 'the revoked task did not run');
  const state = await runInProcess(['result', 'get', taskId, '--json', ...flags], { env });
  t.equal(JSON.parse(state.stdout).state, 'cancelled');
  t.equal(await worker.stop(), 0);
});

t.test('with only a broker URL, a pause is stored with the broker for workers that start later, with no warning', async (t) => {
  if (!(await requireRedis(t))) return;
  const id = uniqueName('pausebroker');
  t.teardown(() => deleteKeysOf(id));
  const brokerOnly = {
    STEM_BROKER_URL: REDIS_URL,
    STEM_RESULT_BACKEND_URL: '',
    STEM_REVOKE_STORE_URL: '',
    STEM_CONTROL_NAMESPACE: id,
  };
  const paused = await runInProcess(['worker', 'pause', '--queue', id, ...config], { env: brokerOnly });
  t.equal(paused.code, 0, paused.stderr);
  t.match(paused.stdout, /stored for workers that start later/);
  t.notMatch(paused.stderr, /no revoke store/, "the broker's Redis keeps it");
  const resumed = await runInProcess(['worker', 'resume', '--queue', id, ...config], { env: brokerOnly });
  t.equal(resumed.code, 0, resumed.stderr);
  t.notMatch(resumed.stderr, /no revoke store/);
});
