import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runInProcess } from '../cli/in-process.js';
import { runStem, startStem } from '../helpers/run-stem.js';

// The first dump and the workers run the real binary; the other one-shot commands run in this test
// process through the binary's main(), which saves a node start-up each.

const FIXTURE = 'fixtures/routing.yaml';
/** No routing file from the environment unless a test gives one. */
// memory://, not the CLI's SQLite default: that would be a .stem/stem.db in the repository, shared by every test file.
const clean = { STEM_ROUTING_CONFIG: '', STEM_BROKER_URL: 'memory://', STEM_RESULT_BACKEND_URL: '' };

t.test('stem routing dump prints the fixture table in the order rules are tried', async (t) => {
  const run = await runStem(['routing', 'dump', '--routing-config', FIXTURE], { env: clean });
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /Routing table from fixtures\/routing\.yaml/);
  t.match(run.stdout, /queues\.reports\.routing_key\s+│ reports\.generate\s+│ reports\s+│ as enqueued, clamped into 2–7/);
  t.match(run.stdout, /queues\.emails\.routing_key\s+│ billing\.email-\*\s+│ emails/);
  t.match(run.stdout, /default_queue\s+│ any other task\s+│ critical \(alias default\)/);
  t.match(run.stdout, /broadcasts\.maintenance\s+│ broadcast:\/\/maintenance\s+│ every subscribed worker \(fanout\)/);
  t.match(run.stdout, /Workers that name no broadcasts subscribe to: maintenance/);
  t.ok(run.stdout.indexOf('routing_key') < run.stdout.indexOf('default_queue'), 'routing keys come before the default queue');
});

t.test('stem routing dump --json prints the table as data, the file taken from STEM_ROUTING_CONFIG', async (t) => {
  const run = await runInProcess(['routing', 'dump', '--json'], { env: { ...clean, STEM_ROUTING_CONFIG: FIXTURE } });
  t.equal(run.code, 0, run.stderr);
  const dump = JSON.parse(run.stdout);
  t.same(dump.defaultQueue, { queue: 'critical', alias: 'default', fallbacks: [] });
  t.same(dump.queues[0], { name: 'reports', routingKeys: ['reports.generate'], priorityRange: { min: 2, max: 7 } });
  t.same(dump.broadcasts, [{ name: 'maintenance', address: 'broadcast://maintenance', delivery: 'fanout' }]);
});

t.test('stem routing test says where a task goes and with what priority', async (t) => {
  const clamped = await runInProcess(['routing', 'test', 'reports.generate', '--priority', '9', '--routing-config', FIXTURE], {
    env: clean,
  });
  t.equal(clamped.code, 0, clamped.stderr);
  t.equal(
    clamped.stdout,
    'reports.generate → queue reports, priority 7 (asked 9, clamped into 2–7); decided by queues.reports.routing_key\n',
  );
  const email = await runInProcess(['routing', 'test', 'billing.email-receipt', '--routing-config', FIXTURE, '--json'], { env: clean });
  t.equal(email.code, 0, email.stderr);
  t.same(JSON.parse(email.stdout), {
    task: 'billing.email-receipt',
    headers: {},
    queue: 'emails',
    priority: 5,
    clamped: null,
    matchedBy: 'queues.emails.routing_key',
  });
  const other = await runInProcess(['routing', 'test', 'misc.cleanup', '--routing-config', FIXTURE, '--json'], { env: clean });
  t.match(JSON.parse(other.stdout), { queue: 'critical', matchedBy: 'default_queue' });
  const explicit = await runInProcess(['routing', 'test', 'reports.generate', '--queue', 'emails', '--routing-config', FIXTURE, '--json'], {
    env: clean,
  });
  t.match(JSON.parse(explicit.stdout), { queue: 'emails', matchedBy: 'explicit queue' });
  const own = await runInProcess(['routing', 'test', 'reports.render', '--routing-config', FIXTURE, '--json'], { env: clean });
  t.match(
    JSON.parse(own.stdout),
    { queue: 'reports', matchedBy: 'task queue' },
    'a task registered in stem.config.ts brings its own queue',
  );
  const broadcast = await runInProcess(['routing', 'test', 'broadcast://maintenance', '--routing-config', FIXTURE], { env: clean });
  t.match(
    broadcast.stdout,
    /broadcast:\/\/maintenance → broadcast:\/\/maintenance \(every subscribed worker runs it once\), priority 5; decided by broadcast address/,
  );
});

t.test('stem routing test matches header routes given with --headers', async (t) => {
  const dir = t.testdir({
    'routing.yaml':
      'default_queue: critical\nqueues:\n  vip:\n    priority_range: [8, 9]\nroutes:\n  - match: { task: "reports.*", headers: { tenant: acme } }\n    queue: vip\n',
  });
  const file = join(dir, 'routing.yaml');
  const acme = await runInProcess(
    ['routing', 'test', 'reports.generate', '--headers', '{"tenant":"acme"}', '--routing-config', file, '--json'],
    { env: clean },
  );
  t.equal(acme.code, 0, acme.stderr);
  t.same(JSON.parse(acme.stdout), {
    task: 'reports.generate',
    headers: { tenant: 'acme' },
    queue: 'vip',
    priority: 8,
    clamped: { from: 5, to: 8 },
    matchedBy: 'routes[0]',
  });
  const other = await runInProcess(
    ['routing', 'test', 'reports.weekly', '--headers', '{"tenant":"globex"}', '--routing-config', file, '--json'],
    { env: clean },
  );
  t.match(JSON.parse(other.stdout), { queue: 'critical', matchedBy: 'default_queue' });
});

t.test('no routing file is a usage error saying how to give one', async (t) => {
  for (const verb of [['dump'], ['test', 'reports.generate']]) {
    const run = await runInProcess(['routing', ...verb], { env: clean });
    t.equal(run.code, 64, `routing ${verb[0]}`);
    t.equal(
      run.stderr,
      'stem: no routing file: pass --routing-config routing.yaml, set STEM_ROUTING_CONFIG, or add routing({ file }) to the plugins of stem.config.ts\n',
    );
  }
});

t.test('bad --headers or --priority is one line and exit 64', async (t) => {
  const notJson = await runInProcess(['routing', 'test', 'a.b', '--headers', '{tenant:acme}', '--routing-config', FIXTURE], { env: clean });
  t.equal(notJson.code, 64);
  t.match(notJson.stderr, /^stem: --headers: not JSON \(.+\); pass an object such as '\{"tenant":"acme"\}'\n$/);
  const notObject = await runInProcess(['routing', 'test', 'a.b', '--headers', '[1]', '--routing-config', FIXTURE], { env: clean });
  t.equal(notObject.code, 64);
  t.match(notObject.stderr, /^stem: --headers: \[1\] is not a JSON object/);
  const priority = await runInProcess(['routing', 'test', 'a.b', '--priority', '12', '--routing-config', FIXTURE], { env: clean });
  t.equal(priority.code, 64);
  t.equal(priority.stderr, 'stem: --priority: "12" is not a priority; use a whole number from 0 (lowest) to 9 (highest)\n');
});

t.test('a bad routing file is one line naming file, line, column and key, exit 64, never a stack', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'routing.yaml');
  writeFileSync(file, 'default_queue: critical\nqueues:\n  reports:\n    priority_range: [2, 12]\n');
  for (const args of [
    ['routing', 'dump', '--routing-config', file],
    ['routing', 'test', 'x', '--routing-config', file],
  ]) {
    const run = await runInProcess(args, { env: clean });
    t.equal(run.code, 64, args.join(' '));
    t.match(run.stderr, /^stem: .*routing\.yaml:4:25: queues\.reports\.priority_range: 12 is outside 0–9/);
    t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
    t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('--registry checks every glob against the registered tasks', async (t) => {
  const dir = t.testdir({ 'routing.yaml': 'default_queue: critical\nqueues:\n  emails:\n    routing_key: billing.emial-*\n' });
  const typo = await runInProcess(['routing', 'dump', '--routing-config', join(dir, 'routing.yaml'), '--registry', 'fixtures/tasks.ts'], {
    env: clean,
  });
  t.equal(typo.code, 64);
  t.match(
    typo.stderr,
    /^stem: .*routing\.yaml:4:18: queues\.emails\.routing_key: "billing\.emial-\*" matches none of the \d+ registered tasks \(.*billing\.email-receipt.*\); fix the glob or register the task\n$/,
  );
  const fixture = await runInProcess(['routing', 'dump', '--routing-config', FIXTURE, '--registry', 'fixtures/tasks.ts'], { env: clean });
  t.equal(fixture.code, 0, fixture.stderr);
});

t.test('stem routing --help lists both commands with examples', async (t) => {
  const dump = await runInProcess(['routing', 'dump', '--help']);
  t.match(dump.stdout, /Print the resolved routing table/);
  t.match(dump.stdout, /\$ stem routing dump --routing-config routing\.yaml/, "examples name files a user's project has");
  const test = await runInProcess(['routing', 'test', '--help']);
  t.match(test.stdout, /\$ stem routing test <task>/);
  t.match(test.stdout, /--headers/);
});

t.test('stem worker start --broadcasts "" subscribes to no channel; without the flag it takes the routing file\'s', async (t) => {
  const none = await startStem(['worker', 'start', '--routing-config', FIXTURE, '--broadcasts', ''], { env: clean });
  await none.waitForOutput(/ready on .*consuming critical\n/);
  t.notMatch(none.output(), /broadcasts maintenance/, 'the explicit empty list means none');
  t.equal(await none.stop('SIGTERM'), 0);
  const every = await startStem(['worker', 'start', '--routing-config', FIXTURE], { env: clean });
  await every.waitForOutput(/ready on .*consuming critical; broadcasts maintenance\n/);
  t.equal(await every.stop('SIGTERM'), 0);
});

t.test('stem worker start --queues "" is a usage error, not the default queue in disguise', async (t) => {
  const run = await runStem(['worker', 'start', '--queues', ''], { env: clean });
  t.equal(run.code, 64);
  t.match(run.stderr, /--queues names no queue/);
});
