import t from 'tap';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { runStem, startStem } from '../helpers/run-stem.js';
import { uniqueName } from '../helpers/wait.js';
import { runInProcess } from './in-process.js';

// Every command here runs the real binary in its own process against the test Redis, as a user would.
const connection = ['--broker', REDIS_URL, '--backend', REDIS_URL, '--registry', 'fixtures/cli-tasks.ts'];
const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' };

t.test('enqueue, worker start, result wait/get, dlq and queues work across processes', async (t) => {
  if (!(await requireRedis(t))) return;
  const queue = uniqueName('cli');
  const worker = await startStem(['worker', 'start', '--queues', queue, '--concurrency', '4', ...connection], { env });
  t.teardown(() => worker.stop('SIGKILL'));
  await worker.waitForOutput(/ready on .*consuming/);

  const enqueued = await runStem(['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--queue', queue, '--json', ...connection], { env });
  t.equal(enqueued.code, 0, enqueued.stderr);
  const [{ id, queue: publishedTo }] = JSON.parse(enqueued.stdout) as [{ id: string; queue: string }];
  t.equal(publishedTo, queue);

  const waited = await runStem(['result', 'wait', id, '--timeout', '30s', '--json', ...connection], { env });
  t.equal(waited.code, 0, waited.stderr);
  t.equal(JSON.parse(waited.stdout).result, 3);
  const got = await runStem(['result', 'get', id, ...connection], { env });
  t.match(got.stdout, /state\s+succeeded/);
  t.match(got.stdout, /result\s+3/);

  const failed = await runStem(
    ['enqueue', 'cli.fail', '--args', '{"why":"test"}', '--queue', queue, '--wait', '--timeout', '30s', ...connection],
    { env },
  );
  t.equal(failed.code, 1, 'exit 1 when the awaited task failed');
  t.match(failed.stdout, /failed failed on purpose: test/);
  const deadId = failed.stdout.split(' ')[0]!;

  const listed = await runStem(['dlq', 'list', '--queue', queue, '--json', ...connection], { env });
  const page = JSON.parse(listed.stdout) as { total: number; entries: Array<{ id: string; reason: string }> };
  t.equal(page.total, 1);
  t.equal(page.entries[0]!.id, deadId);
  t.equal(page.entries[0]!.reason, 'max-retries-exhausted');
  const shown = await runStem(['dlq', 'show', deadId, '--queue', queue, ...connection], { env });
  t.match(shown.stdout, /failed on purpose/);
  const dry = await runStem(['dlq', 'replay', '--queue', queue, '--dry-run', ...connection], { env });
  t.match(dry.stdout, new RegExp(`would replay 1 dead letter\\(s\\) of ${queue}: ${deadId}`));
  const refused = await runStem(['dlq', 'purge', '--queue', queue, ...connection], { env });
  t.equal(refused.code, 64, 'purge without --yes and without a TTY is refused');
  t.match(refused.stderr, /pass --yes/);
  const replayed = await runStem(['dlq', 'replay', '--queue', queue, ...connection], { env });
  t.match(replayed.stdout, /replayed 1 dead letter/);
  await worker.waitForOutput(new RegExp(`cli.fail\\[${deadId}\\] failed.*\\n(.|\\n)*cli.fail\\[${deadId}\\] failed`));
  const purged = await runStem(['dlq', 'purge', '--queue', queue, '--yes', ...connection], { env });
  t.match(purged.stdout, /purged 1 dead letter/);

  // Listing and retry read the backend only: in this process (no node start-up each).
  const failedList = await runInProcess(
    ['result', 'list', '--state', 'failed', '--queue', queue, '--since', '1h', '--json', ...connection],
    {
      env,
    },
  );
  t.equal(failedList.code, 0, failedList.stderr);
  const failedPage = JSON.parse(failedList.stdout) as { tasks: Array<{ id: string; args: unknown; state: string }>; cursor?: string };
  t.same(
    failedPage.tasks.map((task) => [task.id, task.state, task.args]),
    [[deadId, 'failed', { why: 'test' }]],
    'result list --json: the failed task with its args',
  );
  const table = await runInProcess(['result', 'list', '--queue', queue, '--limit', '1', ...connection], { env });
  t.match(table.stdout, /cli\.fail.*failed.*failed on purpose/, 'the newest task of the queue in a table');
  t.match(table.stdout, /1 task\(s\); next page: --cursor \S+/, 'a cursor to the next page');
  const retried = await runInProcess(['result', 'retry', deadId, ...connection], { env });
  t.equal(retried.code, 0, retried.stderr);
  t.match(retried.stdout, new RegExp(`retried ${deadId} \\(cli.fail on ${queue}\\)`));
  await worker.waitForOutput(new RegExp(`(cli.fail\\[${deadId}\\] failed(.|\\n)*){3}`));
  const notRetried = await runInProcess(['result', 'retry', id, ...connection], { env });
  t.equal(notRetried.code, 1, 'a succeeded task is not retried');
  t.match(notRetried.stderr, /only a failed or cancelled task can be retried/);

  const queues = await runStem(['queues', 'list', '--json', ...connection], { env });
  t.ok(
    (JSON.parse(queues.stdout) as Array<{ queue: string }>).some((row) => row.queue === queue),
    'the queue is listed',
  );

  const stopped = await worker.stop('SIGTERM');
  t.equal(stopped, 0, 'the worker exits 0 on SIGTERM');
  t.match(worker.output(), /stopped/);
  t.match(worker.output(), new RegExp(`cli.add\\[${id}\\] succeeded`), 'one log line per task');
});

t.test('worker start logs JSON lines with --log-format json; queues purge empties a queue', async (t) => {
  if (!(await requireRedis(t))) return;
  const queue = uniqueName('cli');
  for (let i = 0; i < 3; i++)
    await runStem(['enqueue', 'cli.nap', '--args', '{"ms":1}', '--queue', queue, '--not-before', '1h', ...connection], { env });
  const listed = JSON.parse((await runStem(['queues', 'list', '--json', ...connection], { env })).stdout) as Array<{
    queue: string;
    pending: number;
  }>;
  t.equal(listed.find((row) => row.queue === queue)?.pending, 3, 'three delayed tasks wait');
  const purged = await runStem(['queues', 'purge', queue, '--yes', ...connection], { env });
  t.match(purged.stdout, /purged 3 task\(s\)/);

  const worker = await startStem(['worker', 'start', '--queues', queue, '--log-format', 'json', ...connection], { env });
  t.teardown(() => worker.stop('SIGKILL'));
  await worker.waitForOutput(/"event":"worker-ready"/);
  await runStem(['enqueue', 'cli.add', '--args', '{"a":2,"b":2}', '--queue', queue, ...connection], { env });
  await worker.waitForOutput(/"event":"task-succeeded"/);
  const line = worker
    .output()
    .split('\n')
    .find((l) => l.includes('task-succeeded'))!;
  t.match(JSON.parse(line), { level: 'info', event: 'task-succeeded', task: 'cli.add', queue });
  t.equal(await worker.stop(), 0);
});

t.test('health answers 0 when services answer and 69 when the broker is unreachable', async (t) => {
  if (!(await requireRedis(t))) return;
  const ok = await runStem(['health', '--json', ...connection], { env });
  t.equal(ok.code, 0, ok.stderr);
  t.same(
    JSON.parse(ok.stdout).checks.map((c: { ok: boolean }) => c.ok),
    [true, true],
  );
  const down = await runStem(['health', '--broker', 'redis://:secret@127.0.0.1:1/0'], { env, timeoutMs: 60_000 });
  t.equal(down.code, 69, down.stdout + down.stderr);
  t.match(down.stdout + down.stderr, /127\.0\.0\.1:1/);
  t.notMatch(down.stdout + down.stderr, /secret/, 'the password is masked');
});

t.test('bad input to enqueue is one line with exit 64', async (t) => {
  const badJson = await runStem(['enqueue', 'cli.add', '--args', '{a:1}', '--registry', 'fixtures/cli-tasks.ts'], { env });
  t.equal(badJson.code, 64);
  t.match(badJson.stderr, /^stem: --args: not valid JSON/);
  const unknown = await runStem(['enqueue', 'cli.nope', '--args', '{}', '--registry', 'fixtures/cli-tasks.ts', '--broker', 'memory://'], {
    env,
  });
  t.equal(unknown.code, 64);
  t.match(unknown.stderr, /^stem: unknown task "cli\.nope".*registered tasks: .*cli\.add/);
  const badPriority = await runStem(['enqueue', 'cli.add', '--priority', '12', '--registry', 'fixtures/cli-tasks.ts'], { env });
  t.equal(badPriority.code, 64);
  t.match(badPriority.stderr, /--priority: "12" must be a whole number from 0 to 9/);
  const badDelay = await runStem(
    ['enqueue', 'cli.add', '--not-before', 'soon', '--registry', 'fixtures/cli-tasks.ts', '--broker', 'memory://'],
    { env },
  );
  t.equal(badDelay.code, 64);
  t.match(badDelay.stderr, /notBefore: "soon" is not a duration/);
  const unreachable = await runStem(
    ['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--registry', 'fixtures/cli-tasks.ts', '--broker', 'redis://user:pw@127.0.0.1:1/0'],
    { env },
  );
  t.equal(unreachable.code, 69, 'an unreachable broker exits 69');
  t.match(unreachable.stderr, /^stem: cannot reach redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/0/);
  for (const run of [badJson, unknown, badPriority, badDelay, unreachable])
    t.equal(run.stderr.trim().split('\n').length, 1, 'one line, no stack');
});

t.test('tasks list and config print show the resolved setup, passwords masked', async (t) => {
  const tasks = await runStem(['tasks', 'list', '--registry', 'fixtures/cli-tasks.ts', '--json'], { env });
  t.equal(tasks.code, 0, tasks.stderr);
  const names = (JSON.parse(tasks.stdout) as Array<{ name: string }>).map((task) => task.name);
  t.ok(
    ['cli.add', 'cli.fail', 'math.add', 'reports.generate'].every((name) => names.includes(name)),
    'the config tasks and the registry module tasks',
  );
  const printed = await runStem(['config', 'print', '--json'], {
    env: { STEM_BROKER_URL: 'redis://user:hunter2@cache.internal:6379/0', STEM_WORKER_QUEUES: 'a,b', STEM_DEFAULT_QUEUE: 'critical' },
  });
  t.equal(printed.code, 0, printed.stderr);
  const view = JSON.parse(printed.stdout);
  t.equal(view.urls.broker, 'redis://user:***@cache.internal:6379/0');
  t.equal(view.urls.backend, 'memory');
  t.equal(view.urls.revokeStore, 'redis://user:***@cache.internal:6379/0', 'revokes live with the broker when given no URL of their own');
  t.equal(view.urls.scheduleStore, 'redis://user:***@cache.internal:6379/0', 'and so do schedules');
  t.same(view.worker.queues, ['a', 'b']);
  t.equal(view.defaultQueue, 'critical');
  t.match(view.configFile, /stem\.config\.ts$/);
  const flagWins = await runStem(['config', 'print', '--json', '--broker', 'memory://'], {
    env: { STEM_BROKER_URL: 'redis://127.0.0.1:6379' },
  });
  t.equal(JSON.parse(flagWins.stdout).urls.broker, 'memory://', 'a flag beats a variable');
  const own = await runStem(['config', 'print', '--json'], {
    env: { STEM_BROKER_URL: 'redis://127.0.0.1:6379', STEM_REVOKE_STORE_URL: 'memory://' },
  });
  t.equal(JSON.parse(own.stdout).urls.revokeStore, 'memory://', 'a revoke store URL of its own wins over the broker');
});
