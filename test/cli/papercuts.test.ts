import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Stem } from '../../sdk/kernel.js';
import { Signals } from '../../sdk/signals.js';
import { routing } from '../../plugins/routing/index.js';
import { logTaskSignals } from '../../cli/output/task-log.js';
import { printable } from '../../cli/output/printable.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { repoRoot, runStem } from '../helpers/run-stem.js';
import { runInProcess } from './in-process.js';

// Issue 26, items 5 and 7: each papercut and each bad input through the CLI. Most run in this
// process through main(); those that need a process of their own (exit paths) run the binary.

const memory = ['--broker', 'memory://'];
const cliTasks = ['--registry', 'fixtures/cli-tasks.ts'];
const oneLine = (text: string): boolean => text.trim().split('\n').length === 1;

// A scratch project inside the repository, so that its configs can import 'stem' by name.
const project = mkdtempSync(join(repoRoot, '.tmp-papercuts-'));
t.teardown(() => rmSync(project, { recursive: true, force: true }));

t.test('an unknown command says which commands exist; migrate says it needs the postgres plugin', async (t) => {
  const migrate = await runInProcess(['migrate', '--url', 'postgres://postgres@127.0.0.1:5432/test']);
  t.equal(migrate.code, 64);
  t.match(migrate.stderr, /^stem: "stem migrate" comes with the postgres plugin.*postgres:\/\/ URL.*postgres\(\{ url \}\)/);
  const typo = await runInProcess(['queue', 'list']);
  t.equal(typo.code, 64);
  t.match(
    typo.stderr,
    /^stem: unknown command "queue list"; did you mean .*"queues"\? the commands are: beat, config, dashboard, demo, dlq, enqueue, events, health, queues, result, routing, schedule, tasks, wf, worker/,
  );
  const group = await runInProcess(['worker']);
  t.match(group.stderr, /^stem: "stem worker" needs a subcommand: (\S+, )*inspect, pause, .*start/);
  const sub = await runInProcess(['result', 'fetch', 'x']);
  t.match(sub.stderr, /^stem: "stem result" has no subcommand "fetch x": get, list, retry, wait/);
  for (const run of [migrate, typo, group, sub]) {
    t.ok(oneLine(run.stderr), 'one line');
    t.notMatch(run.stderr, /did you mean one of:/);
  }
});

t.test("help shows what each value is, and examples name a project's own files", async (t) => {
  const help = await runInProcess(['--help']);
  t.equal(help.code, 0);
  t.notMatch(help.stdout, /#0/, 'no clipanion #0 placeholder');
  t.match(help.stdout, /stem enqueue .*\[--args <json>\] .*\[--priority <0-9>\] .*\[--count <n>\]/);
  t.match(help.stdout, /stem schedule list \[--verbose\] \[--store <url>\]/);
  const enqueue = await runInProcess(['enqueue', '--help']);
  t.match(enqueue.stdout, /--args <json>\s+Arguments as a JSON object/);
  t.match(enqueue.stdout, /--args-file <file\|->/);
  t.notMatch(enqueue.stdout, /#0|fixtures\//);
  for (const command of [
    ['worker', 'start'],
    ['routing', 'dump'],
    ['tasks', 'list'],
    ['schedule', 'apply'],
  ]) {
    const run = await runInProcess([...command, '--help']);
    t.notMatch(run.stdout, /#0|fixtures\//, `${command.join(' ')} --help`);
  }
});

t.test("enqueue with no broker configured uses the project's SQLite default; an explicit memory:// is allowed with a note", async (t) => {
  // A project directory of its own, as a user's: the default lives in <project>/.stem/stem.db.
  const home = mkdtempSync(join(repoRoot, '.tmp-default-broker-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const registry = join(repoRoot, 'fixtures/cli-tasks.ts');
  const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '', STEM_CONFIG: '' };
  const none = await runStem(['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--registry', registry, '--json'], { cwd: home, env });
  t.equal(none.code, 0, none.stderr);
  const [{ id }] = JSON.parse(none.stdout) as [{ id: string }];
  t.ok(existsSync(join(home, '.stem', 'stem.db')), 'the default database is created in the project on first use');
  const stored = await runStem(['result', 'get', id, '--json'], { cwd: home, env });
  t.match(JSON.parse(stored.stdout), { id, state: 'queued' }, 'another process reads the task from the same default');
  const explicit = await runInProcess(['enqueue', 'cli.add', '--args', '{"a":1,"b":2}', '--registry', 'fixtures/cli-tasks.ts', ...memory]);
  t.equal(explicit.code, 0, explicit.stderr);
  t.match(explicit.stdout, /^\S+ cli\.add -> default \(priority 5\)\n$/);
  t.match(explicit.stderr, /note: the broker is memory:\/\/, which ends with this command/);
});

t.test('enqueue takes only a JSON object as args, from the flag, stdin or a file', async (t) => {
  for (const [value, got] of [
    ['[1,2]', 'an array'],
    ['42', 'a number'],
    ['null', 'null'],
    ['"x"', 'a string'],
  ] as const) {
    const run = await runInProcess(['enqueue', 'cli.add', '--args', value, ...memory]);
    t.equal(run.code, 64, value);
    t.match(run.stderr, new RegExp(`^stem: --args: task arguments must be a JSON object of named fields, got ${got}`));
    t.ok(oneLine(run.stderr));
  }
  const piped = await runInProcess(['enqueue', 'cli.add', '--args', '-', '--registry', 'fixtures/cli-tasks.ts', '--json', ...memory], {
    stdin: JSON.stringify({ a: 1, b: 'x'.repeat(200_000) }),
  });
  t.equal(piped.code, 0, piped.stdout + piped.stderr);
  t.equal(JSON.parse(piped.stdout)[0].task, 'cli.add', '200 KB of args from stdin');
  const file = join(project, 'args.json');
  writeFileSync(file, '{"a":1,"b":2}');
  const fromFile = await runInProcess(['enqueue', 'cli.add', '--args-file', file, ...cliTasks, ...memory]);
  t.equal(fromFile.code, 0, fromFile.stderr);
  const missing = await runInProcess(['enqueue', 'cli.add', '--args-file', join(project, 'nope.json'), ...memory]);
  t.equal(missing.code, 64);
  t.match(missing.stderr, /^stem: --args-file: cannot read .*nope\.json \(ENOENT\)/);
  const both = await runInProcess(['enqueue', 'cli.add', '--args', '{}', '--args-file', file, ...memory]);
  t.match(both.stderr, /^stem: --args and --args-file: give one of them/);
  const badFile = join(project, 'bad-args.json');
  writeFileSync(badFile, '[1]');
  const notObject = await runInProcess(['enqueue', 'cli.add', '--args-file', badFile, ...memory]);
  t.match(notObject.stderr, /--args-file .*bad-args\.json: task arguments must be a JSON object/);
});

t.test('--count is a whole number up to 1,000,000; --priority -1 names the range', async (t) => {
  for (const count of ['1e9', '1000001', '0', '1.5', '0x10', 'many']) {
    const run = await runInProcess(['enqueue', 'cli.add', '--count', count, ...memory]);
    t.equal(run.code, 64, count);
    t.match(run.stderr, new RegExp(`^stem: --count: "${count.replace('.', '\\.')}" must be a whole number from 1 to 1000000`));
  }
  for (const argv of [['--priority', '-1'], ['--priority=-1']]) {
    const run = await runInProcess(['enqueue', 'cli.add', ...argv, ...memory]);
    t.equal(run.code, 64);
    t.match(run.stderr, /^stem: --priority: "-1" must be a whole number from 0 to 9/, argv.join(' '));
  }
});

t.test('the empty queue name is refused at enqueue', async (t) => {
  const run = await runInProcess(['enqueue', 'cli.add', '--queue', '', ...cliTasks, ...memory]);
  t.equal(run.code, 64);
  t.match(run.stderr, /^stem: invalid queue name: it is empty/);
});

t.test('enqueue shows the priority clamp and the not-before time', async (t) => {
  const run = await runInProcess([
    'enqueue',
    'reports.generate',
    '--args',
    '{"customerId":42}',
    '--priority',
    '8',
    '--not-before',
    '5m',
    '--routing-config',
    'fixtures/routing.yaml',
    '--registry',
    'fixtures/tasks.ts',
    ...memory,
  ]);
  t.equal(run.code, 0, run.stderr);
  t.match(
    run.stdout,
    /^\S+ reports\.generate -> reports \(priority 7, clamped from 8 by the queue's priority range; not before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)\n$/,
  );
  const json = await runInProcess([
    'enqueue',
    'reports.generate',
    '--priority',
    '8',
    '--routing-config',
    'fixtures/routing.yaml',
    '--registry',
    'fixtures/tasks.ts',
    '--json',
    ...memory,
  ]);
  t.match(JSON.parse(json.stdout)[0], { queue: 'reports', priority: 7, clamped: { from: 8, to: 7 }, notBefore: null });
});

t.test('result get shows the clamped priority, the not-before time and the expiry a task was enqueued with', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('papercuts-queued');
  t.teardown(() => deleteNamespace(namespace));
  const url = `${REDIS_URL}?namespace=${namespace}`;
  const services = ['--broker', url, '--backend', url, '--routing-config', 'fixtures/routing.yaml', '--registry', 'fixtures/tasks.ts'];
  const enqueued = await runInProcess([
    'enqueue',
    'reports.generate',
    '--args',
    '{"customerId":42}',
    '--priority',
    '8',
    '--not-before',
    '5m',
    '--json',
    ...services,
  ]);
  t.equal(enqueued.code, 0, enqueued.stderr);
  const [task] = JSON.parse(enqueued.stdout) as Array<{ id: string; notBefore: number }>;
  const notBefore = new Date(task!.notBefore).toISOString();
  const shown = await runInProcess(['result', 'get', task!.id, ...services]);
  t.equal(shown.code, 0, shown.stderr);
  t.match(
    shown.stdout,
    new RegExp(
      `^id +${task!.id}\nstate +queued\ntask +reports\\.generate\nqueue +reports\nattempt +0\npriority +7 \\(asked for 8, changed at enqueue\\)\nnot before ${notBefore.replace(/[.]/g, '\\.')}\nupdated `,
    ),
  );
  const json = JSON.parse((await runInProcess(['result', 'get', task!.id, '--json', ...services])).stdout);
  t.match(json.meta, { 'stem.priority': { asked: 8, enqueued: 7 }, 'stem.notBefore': task!.notBefore });

  const plain = await runInProcess([
    'enqueue',
    'cli.add',
    '--args',
    '{"a":1,"b":2}',
    '--queue',
    'work',
    '--json',
    '--broker',
    url,
    '--backend',
    url,
    ...cliTasks,
  ]);
  const plainId = (JSON.parse(plain.stdout) as Array<{ id: string }>)[0]!.id;
  const plainShown = await runInProcess(['result', 'get', plainId, '--broker', url, '--backend', url]);
  t.notMatch(plainShown.stdout, /priority|not before|expires/, 'nothing to show for a task enqueued as asked');
  t.equal(
    JSON.parse((await runInProcess(['result', 'get', plainId, '--json', '--broker', url, '--backend', url])).stdout).meta,
    undefined,
    'and no meta written',
  );
});

t.test('the queued state records the expiry and the moved priority in memory too', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ file: 'fixtures/routing.yaml' })] });
  t.teardown(() => stem.close());
  const handle = await stem.enqueue('reports.generate', {}, { priority: 1, expires: '1h' });
  const status = await handle.status();
  t.equal(status.state, 'queued');
  t.match(status.meta, { 'stem.priority': { asked: 1, enqueued: 2 }, 'stem.expiresAt': Number });
  t.notOk('stem.notBefore' in (status.meta ?? {}));
});

t.test('queues list leaves broadcast channels out unless --all; the demo leaves no queue of its own behind', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('papercuts');
  t.teardown(() => deleteNamespace(namespace));
  const url = `${REDIS_URL}?namespace=${namespace}`;
  const broker = ['--broker', url, '--backend', url];
  t.equal((await runInProcess(['enqueue', 'broadcast://maintenance', '--args', '{}', ...broker])).code, 0);
  t.equal((await runInProcess(['enqueue', 'cli.add', '--args', '{"a":1,"b":1}', '--queue', 'work', ...cliTasks, ...broker])).code, 0);
  const listed = await runInProcess(['queues', 'list', '--json', ...broker]);
  t.same(
    (JSON.parse(listed.stdout) as Array<{ queue: string }>).map((row) => row.queue),
    ['work'],
  );
  const text = await runInProcess(['queues', 'list', ...broker]);
  t.match(text.stdout, /1 broadcast channel\(s\) not shown; --all lists them/);
  const all = await runInProcess(['queues', 'list', '--all', '--json', ...broker]);
  t.same(
    (JSON.parse(all.stdout) as Array<{ queue: string }>).map((row) => row.queue),
    ['work', 'broadcast://maintenance'],
  );

  for (let run = 0; run < 2; run++) {
    const demo = await runInProcess(['demo'], { env: { STEM_BROKER_URL: url, STEM_RESULT_BACKEND_URL: url } });
    t.equal(demo.code, 0, demo.stdout + demo.stderr);
  }
  const after = JSON.parse((await runInProcess(['queues', 'list', '--json', ...broker])).stdout) as Array<{
    queue: string;
    pending: number;
    dead: number;
  }>;
  t.same(
    after.filter((row) => row.queue.startsWith('stem-demo')),
    [{ queue: 'stem-demo', pending: 0, inflight: 0, dead: 0 }],
    'two demos: one empty demo queue, not one per run',
  );
});

t.test('config print names the plugin that provides a service', async (t) => {
  writeFileSync(
    join(project, 'stem.config.mjs'),
    `import { postgres } from 'stem/plugins/postgres';
export default { plugins: [postgres({ url: 'postgres://postgres@127.0.0.1:5432/test' })] };
`,
  );
  const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '', STEM_CONFIG: '' };
  const printed = await runStem(['config', 'print', '--json'], { cwd: project, env });
  t.equal(printed.code, 0, printed.stderr);
  t.same(JSON.parse(printed.stdout).urls, {
    broker: 'plugin postgres',
    backend: 'plugin postgres',
    scheduleStore: 'plugin postgres',
    revokeStore: 'plugin postgres',
  });
  const flagWins = await runStem(['config', 'print', '--json', '--backend', 'redis://127.0.0.1:6379/3'], { cwd: project, env });
  t.match(JSON.parse(flagWins.stdout).urls, { broker: 'plugin postgres', backend: 'redis://127.0.0.1:6379/3' });
  // And with that plugin configured, migrate exists.
  const help = await runStem(['migrate', '--help'], { cwd: project, env });
  t.match(help.stdout, /--url <url>/);
  rmSync(join(project, 'stem.config.mjs'));
});

t.test('schedule list with a memory store says so; health --json is JSON when a service is down', async (t) => {
  const list = await runInProcess(['schedule', 'list'], { env: { STEM_BROKER_URL: 'memory://' } });
  t.equal(list.code, 0);
  t.match(list.stderr, /note: the schedule store is in memory and ends with this command/);
  const health = await runInProcess(['health', '--json', '--broker', 'redis://:secret@127.0.0.1:1/0']);
  t.equal(health.code, 69);
  const document = JSON.parse(health.stdout);
  t.match(document, { error: { code: String, exitCode: 69, message: /cannot reach redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/ } });
  t.notMatch(health.stdout, /secret/);
  t.equal(health.stderr, '');
});

t.test('a bad stem.config or registry is one line naming the file and the fault, exit 64', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['null-plugin.mjs', 'export default { plugins: [null] };', /null-plugin\.mjs: plugins\[0\] is null, not a plugin/],
    [
      'string-tasks.mjs',
      "export default { tasks: 'x' };",
      /string-tasks\.mjs: tasks must be an array of defineTask\(\.\.\.\) results; got the string "x"/,
    ],
    ['not-a-task.mjs', 'export default { tasks: [{ name: 1 }] };', /not-a-task\.mjs: tasks\[0\] is an object, not a task/],
    [
      'syntax.ts',
      'export default { tasks: [ };',
      /syntax\.ts could not be loaded: .*syntax\.ts(:1:\d+: (ERROR: )?Unexpected "}"|\(1,\d+\): error TS\d+)/,
    ],
    ['empty.mjs', 'export {};', /empty\.mjs exports nothing; end it with export default defineConfig/],
    ['throws.mjs', 'throw "nope";', /throws\.mjs could not be loaded: it threw "nope"/],
  ];
  for (const [file, text, expected] of cases) {
    writeFileSync(join(project, file), text);
    const run = await runInProcess(['config', 'print', '--config', join(project, file)]);
    t.equal(run.code, 64, file);
    t.match(run.stderr, expected, file);
    t.ok(oneLine(run.stderr), `${file}: one line, no stack`);
  }
  writeFileSync(join(project, 'throwing-registry.mjs'), 'throw "boom";');
  const registry = await runInProcess(['tasks', 'list', '--registry', join(project, 'throwing-registry.mjs')]);
  t.equal(registry.code, 64);
  t.match(registry.stderr, /^stem: --registry: .*throwing-registry\.mjs could not be loaded: it threw "boom"/);
});

t.test('a config whose top-level await never settles is named, not a silent exit 13', async (t) => {
  writeFileSync(join(project, 'stuck.mjs'), 'await new Promise(() => {});\nexport default {};\n');
  const run = await runStem(['config', 'print', '--config', join(project, 'stuck.mjs')], { env: { STEM_BROKER_URL: '' } });
  t.equal(run.code, 64, run.stderr);
  t.match(run.stderr, /^stem: .*stuck\.mjs never finished loading: a top-level await in it .* never settles/);
  t.ok(oneLine(run.stderr));
});

t.test('a schedules YAML alias bomb names the file, exit 64', async (t) => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  let previous = 'a';
  for (const name of 'bcdefghi') {
    lines.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    previous = name;
  }
  const file = join(project, 'bomb.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const run = await runInProcess(['schedule', 'apply', file, '--dry-run']);
  t.equal(run.code, 64);
  t.match(run.stderr, /^stem: .*bomb\.yaml: not valid YAML \(Excessive alias count/);
});

t.test('names are printed with control characters escaped: one event stays one log line', async (t) => {
  t.equal(printable('a\nb\x1b[31mc\u2028d\te'), 'a\\nb\\x1b[31mc\\u2028d\\te');
  t.equal(printable('reports.generate'), 'reports.generate');
  const signals = new Signals();
  let out = '';
  const stream = { write: (chunk: string) => ((out += chunk), true) } as unknown as NodeJS.WritableStream;
  const stop = logTaskSignals(signals, stream, 'text');
  signals.emit('task-succeeded', {
    envelope: { id: 'id1', name: 'evil\n2026-01-01T00:00:00.000Z INFO forged', queue: 'q', attempt: 0 },
    durationMs: 1,
  } as never);
  stop();
  t.equal(out.split('\n').filter((line) => line !== '').length, 1, 'one line');
  t.match(out, /evil\\n2026-01-01T00:00:00\.000Z INFO forged\[id1\] succeeded/);
});

t.test('worker.stop() before start() is kept: start() then says the worker was stopped first', async (t) => {
  const stem = await Stem.create();
  t.teardown(() => stem.close());
  const worker = stem.worker();
  await worker.stop();
  await t.rejects(worker.start(), /was stopped before it started; create a new worker with stem\.worker\(\)/);
  const started = stem.worker();
  await started.start();
  await started.stop();
  await t.rejects(started.start(), /was already started/);
});
