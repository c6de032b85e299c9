// Runs every command of docs/getting-started/developer-environment.md, in order, each in its own
// process, against the real Redis and Postgres, the way a reader would in three terminals.
import t from 'tap';
import { dropSchema, requirePostgres, testUrl as POSTGRES_URL, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, requireRedis, REDIS_URL, testNamespace } from '../redis/redis-test-support.js';
import { runScript, runStem, startScript, startStem, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';

for (const backend of ['redis', 'postgres'] as const) {
  t.test(`the developer-environment walkthrough works, results on ${backend}`, async (t) => {
    if (!(await requireRedis(t))) return;
    if (backend === 'postgres' && !(await requirePostgres(t))) return;
    t.setTimeout(240_000);
    const namespace = testNamespace('walk');
    const schema = uniqueSchema('walk');
    const withNamespace = (url: string, ns: string): string => `${url}${url.includes('?') ? '&' : '?'}namespace=${ns}`;
    const env = {
      STEM_BROKER_URL: withNamespace(REDIS_URL, namespace),
      STEM_RESULT_BACKEND_URL: backend === 'redis' ? withNamespace(REDIS_URL, `${namespace}-results`) : `${POSTGRES_URL}?schema=${schema}`,
      STEM_SCHEDULE_STORE_URL: withNamespace(REDIS_URL, `${namespace}-schedules`),
      STEM_CONTROL_NAMESPACE: 'stem',
      STEM_ROUTING_CONFIG: 'fixtures/routing.yaml',
    };
    const running: RunningStem[] = [];
    t.teardown(async () => {
      for (const process of running) await process.stop('SIGKILL');
      for (const ns of [namespace, `${namespace}-results`, `${namespace}-schedules`]) await deleteNamespace(ns);
      if (backend === 'postgres') await dropSchema(schema);
    });

    // Section 1: what a process will use.
    const printed = await runStem(['config', 'print', '--json'], { env });
    t.equal(printed.code, 0, printed.stderr);
    t.match(JSON.parse(printed.stdout), { namespace: 'stem', routingConfig: 'fixtures/routing.yaml' });

    // Terminal 1: the worker.
    const worker = await startStem(['worker', 'start', '--registry', 'fixtures/tasks.ts', '--broker', env.STEM_BROKER_URL, '--queues', 'default,reports,emails', '--autoscale', '2:16'], { env });
    running.push(worker);
    await worker.waitForOutput(/ready on .*consuming critical, reports, emails/);

    // Section 2 and 5: the bootstrap's worker with the signal handlers.
    const bootstrapWorker = await startScript('fixtures/walkthrough/run-worker.ts', { env });
    running.push(bootstrapWorker);
    await bootstrapWorker.waitForOutput(/Worker \S+ ready on \S+/);

    // Terminal 2: schedules and Beat.
    const applied = await runStem(['schedule', 'apply', 'fixtures/schedules.json', '--store', env.STEM_SCHEDULE_STORE_URL], { env });
    t.equal(applied.code, 0, applied.stderr);
    const listed = await runStem(['schedule', 'list', '--store', env.STEM_SCHEDULE_STORE_URL], { env });
    t.equal(listed.code, 0, listed.stderr);
    for (const id of ['nightly-report', 'resize-uploads', 'weekday-receipts']) t.match(listed.stdout, id);
    const beat = await startStem(['beat', 'start', '--store', env.STEM_SCHEDULE_STORE_URL], { env });
    running.push(beat);
    await beat.waitForOutput(/beat|Beat/);

    // Terminal 3: producers.
    const report = await runStem(['enqueue', 'reports.generate', '--args', '{"customerId":42}', '--not-before', '5m', '--priority', '8', '--registry', 'fixtures/tasks.ts', '--json'], { env });
    t.equal(report.code, 0, report.stderr);
    const [reportTask] = JSON.parse(report.stdout) as [{ id: string; queue: string; priority: number; notBefore: number }];
    t.equal(reportTask.queue, 'reports', 'routed by its routing key');
    t.equal(reportTask.priority, 7, 'priority 8 clamped into the reports range 2..7');
    t.ok(reportTask.notBefore > Date.now() + 4 * 60_000, 'not before five minutes from now');

    const broadcast = await runStem(['enqueue', 'broadcast://maintenance', '--args', '{"action":"restart"}', '--routing-config', 'fixtures/routing.yaml', '--registry', 'fixtures/tasks.ts'], { env });
    t.equal(broadcast.code, 0, broadcast.stderr);
    await worker.waitForOutput(/maintenance\[\S+\] succeeded/);
    t.pass('the subscribed worker ran the broadcast');

    // Section 4: the group and the chord, then the chord's state from another process.
    const dispatched = await runScript('fixtures/walkthrough/canvas.ts', [], { env });
    t.equal(dispatched.code, 0, dispatched.stderr);
    t.match(dispatched.stdout, /Group dispatched: \S+, \S+/);
    const chordId = /Chord callback task id: (\S+)/.exec(dispatched.stdout)?.[1];
    t.ok(chordId, 'the chord id is printed');
    let state = '';
    await waitFor(async () => {
      const read = await runScript('fixtures/walkthrough/chord-status.ts', [chordId!], { env });
      state = /Chord completion state: (\S+)/.exec(read.stdout)?.[1] ?? read.stderr;
      return state === 'succeeded';
    }, 'the chord to succeed', 60_000);
    t.equal(state, 'succeeded');
    const result = await runStem(['result', 'get', chordId!, '--json'], { env });
    t.match(JSON.parse(result.stdout), { state: 'succeeded', result: { to: 'finance@example.com' } });

    for (const process of [worker, bootstrapWorker, beat]) t.equal(await process.stop('SIGTERM'), 0, 'stops cleanly on SIGTERM');
  });
}
