import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../sdk/errors.js';
import { Stem } from '../../sdk/kernel.js';
import { defineTask } from '../../sdk/task.js';
import { routing } from '../../plugins/routing/index.js';

/** Writes a routing file into the test's own directory and returns its path. */
function routingFile(t: Test, name: string, text: string): string {
  const dir = t.testdir();
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError message routing({ file }) throws for this file text. */
function errorFor(t: Test, text: string, name = 'routing.yaml'): string {
  const file = routingFile(t, name, text);
  try {
    routing({ file });
  } catch (error) {
    t.type(error, ConfigError, 'a ConfigError');
    const message = (error as Error).message;
    t.notMatch(message, /\n/, 'one line');
    return message;
  }
  t.fail('the file was accepted');
  return '';
}

t.test('an unknown top-level key names the file, line, column and key, and lists the keys there are', async (t) => {
  const message = errorFor(t, 'default_queue: critical\nqueue:\n  reports: {}\n');
  t.match(message, /routing\.yaml:2:1: queue: unknown key; the top-level keys are default_queue, queues, broadcasts and routes$/);
});

t.test('an unknown key inside a queue, a route or a match is refused at its line', async (t) => {
  t.match(
    errorFor(t, 'queues:\n  reports:\n    routing-key: reports.*\n'),
    /routing\.yaml:3:5: queues\.reports\.routing-key: unknown key; a queue takes routing_key, priority_range, max_length and overflow/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports: {}\nroutes:\n  - match: { task: r.* }\n    queue: reports\n    forced: true\n'),
    /routing\.yaml:6:5: routes\[0\]\.forced: unknown key; a route takes match, queue, broadcast, priority and force/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports: {}\nroutes:\n  - match: { tasks: r.* }\n    queue: reports\n'),
    /routing\.yaml:4:14: routes\[0\]\.match\.tasks: unknown key; match takes task and headers/,
  );
});

t.test('a priority outside 0–9 points at the value', async (t) => {
  const message = errorFor(t, 'queues:\n  reports:\n    routing_key: reports.generate\n    priority_range: [2, 12]\n');
  t.match(
    message,
    /routing\.yaml:4:25: queues\.reports\.priority_range: 12 is outside 0–9; a priority is a whole number from 0 \(lowest\) to 9 \(highest\)$/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports:\n    priority_range: { min: -1, max: 3 }\n'),
    /routing\.yaml:3:28: queues\.reports\.priority_range: -1 is outside 0–9/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports:\n    priority_range: [1.5, 3]\n'),
    /routing\.yaml:3:22: queues\.reports\.priority_range: 1\.5 is outside 0–9/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports: {}\nroutes:\n  - match: { task: r.* }\n    queue: reports\n    priority: 10\n'),
    /routing\.yaml:6:15: routes\[0\]\.priority: 10 is outside 0–9/,
  );
});

t.test('a priority range with min above max is refused, in either form', async (t) => {
  t.match(
    errorFor(t, 'queues:\n  reports:\n    priority_range: [7, 2]\n'),
    /routing\.yaml:3:21: queues\.reports\.priority_range: min 7 is greater than max 2; write \[min, max\] with min ≤ max$/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports:\n    priority_range: { min: 7, max: 2 }\n'),
    /routing\.yaml:3:21: queues\.reports\.priority_range: min 7 is greater than max 2/,
  );
  t.match(
    errorFor(t, 'queues:\n  reports:\n    priority_range: [7]\n'),
    /routing\.yaml:3:21: queues\.reports\.priority_range: write \[min, max\] or \{ min, max \} with priorities 0–9, not a list/,
  );
});

t.test('a route to an undeclared queue names the queue and the declared ones', async (t) => {
  const message = errorFor(
    t,
    'default_queue: critical\nqueues:\n  reports: {}\nroutes:\n  - match: { task: reports.* }\n    queue: reprots\n',
  );
  t.match(
    message,
    /routing\.yaml:6:12: routes\[0\]\.queue: "reprots" is not a declared queue \(declared: reports, critical, default\); declare it under queues$/,
  );
});

t.test('a route to an undeclared broadcast names the broadcast', async (t) => {
  const message = errorFor(
    t,
    'broadcasts:\n  maintenance: { delivery: fanout }\nroutes:\n  - match: { task: ops.* }\n    broadcast: maintenace\n',
  );
  t.match(
    message,
    /routing\.yaml:5:16: routes\[0\]\.broadcast: "maintenace" is not a declared broadcast \(declared: maintenance\); declare it under broadcasts with delivery: fanout$/,
  );
});

t.test('a route needs a match and exactly one of queue and broadcast', async (t) => {
  const base = 'queues:\n  reports: {}\nbroadcasts:\n  maintenance: {}\nroutes:\n';
  t.match(
    errorFor(t, `${base}  - match: { task: r.* }\n`),
    /routing\.yaml:6:5: routes\[0\]: give where it goes: queue: <name> or broadcast: <name>/,
  );
  t.match(
    errorFor(t, `${base}  - match: { task: r.* }\n    queue: reports\n    broadcast: maintenance\n`),
    /routing\.yaml:8:5: routes\[0\]\.broadcast: a route goes to a queue or a broadcast, not both/,
  );
  t.match(errorFor(t, `${base}  - queue: reports\n`), /routing\.yaml:6:5: routes\[0\]: give a match/);
  t.match(errorFor(t, `${base}  - match: {}\n    queue: reports\n`), /routing\.yaml:6:12: routes\[0\]\.match: give task, headers or both/);
});

t.test('a broadcast delivery other than fanout is refused', async (t) => {
  t.match(
    errorFor(t, 'broadcasts:\n  maintenance:\n    delivery: at-most-once\n'),
    /routing\.yaml:3:15: broadcasts\.maintenance\.delivery: "at-most-once" is not a delivery; the only one is fanout/,
  );
});

t.test('a routing key that an earlier queue already takes can never match, and says which one takes it', async (t) => {
  const message = errorFor(t, 'queues:\n  billing:\n    routing_key: billing.*\n  emails:\n    routing_key: billing.email-*\n');
  t.match(
    message,
    /routing\.yaml:5:18: queues\.emails\.routing_key: "billing\.email-\*" can never match: queues\.billing\.routing_key "billing\.\*" \(.*routing\.yaml:3:18\) takes every task it matches first; remove it or declare queue emails above billing$/,
  );
});

t.test('a route that an earlier, wider route always takes first can never match', async (t) => {
  const message = errorFor(
    t,
    'queues:\n  reports: {}\n  slow: {}\nroutes:\n  - match: { task: reports.* }\n    queue: reports\n  - match: { task: reports.weekly, headers: { tenant: acme } }\n    queue: slow\n',
  );
  t.match(
    message,
    /routing\.yaml:7:5: routes\[1\]: can never match: routes\[0\] takes every task it matches first; put the narrower route before the wider one$/,
  );
});

t.test('a forced route after an unforced wider one is reachable (it wins over an explicit queue)', async (t) => {
  const file = routingFile(
    t,
    'routing.yaml',
    'queues:\n  reports: {}\n  slow: {}\nroutes:\n  - match: { task: reports.* }\n    queue: reports\n  - match: { task: reports.weekly }\n    queue: slow\n    force: true\n',
  );
  t.doesNotThrow(() => routing({ file }));
});

t.test('with checkTasks, a glob that matches none of the registered tasks fails when the plugin is applied', async (t) => {
  const file = routingFile(t, 'routing.yaml', 'default_queue: critical\nqueues:\n  emails:\n    routing_key: billing.emial-*\n');
  const receipt = defineTask({ name: 'billing.email-receipt', handler: async () => 'sent' });
  const error = await Stem.create({ tasks: [receipt], plugins: [routing({ file, checkTasks: true })] }).catch((e: unknown) => e);
  t.type(error, ConfigError);
  t.match(
    (error as Error).message,
    /routing\.yaml:4:18: queues\.emails\.routing_key: "billing\.emial-\*" matches none of the 1 registered tasks \(billing\.email-receipt\); fix the glob or register the task$/,
  );
  const accepted = await Stem.create({ tasks: [receipt], plugins: [routing({ file })] });
  t.teardown(() => accepted.close());
  t.pass('without checkTasks a process that registers other tasks accepts the file');
});

t.test('a queue declared twice is refused at the second one, naming the first line', async (t) => {
  const message = errorFor(t, 'queues:\n  reports:\n    routing_key: reports.*\n  emails: {}\n  reports:\n    priority_range: [1, 2]\n');
  t.match(
    message,
    /routing\.yaml:5:3: queues\.reports: the queue "reports" is declared twice \(first at line 2\); declare each queue once$/,
  );
  t.match(errorFor(t, 'queues: {}\nqueues: {}\n'), /routing\.yaml:2:1: queues: the key "queues" is declared twice \(first at line 1\)/);
});

t.test('a YAML syntax error names the file, line and column, never a stack', async (t) => {
  const message = errorFor(t, 'queues:\n  reports:\n    routing_key: [reports.*\n  emails: {}\n');
  t.match(message, /^.*routing\.yaml:\d+:\d+: invalid YAML: .+; fix the syntax at that position$/);
});

t.test('a JSON file is read by its extension; its syntax errors say JSON', async (t) => {
  const good = routingFile(
    t,
    'routing.json',
    JSON.stringify({ default_queue: 'critical', queues: { reports: { routing_key: ['reports.*'], priority_range: { min: 2, max: 7 } } } }),
  );
  t.equal(routing({ file: good }).table.resolve('reports.generate', {}, undefined, 9).priority, 7);
  t.match(
    errorFor(t, '{"queues": {"reports": {"priority_range": [3, 1]}}}', 'routing.json'),
    /routing\.json:1:43: queues\.reports\.priority_range: min 3 is greater than max 1/,
  );
  t.match(errorFor(t, '{"queues": {"reports": }', 'routing.json'), /routing\.json:\d+:\d+: invalid JSON: /);
});

t.test('a missing file, a wrong extension and an empty file are one clear error each', async (t) => {
  t.throws(() => routing({ file: '/nonexistent/routing.yaml' }), {
    message:
      /^\/nonexistent\/routing\.yaml: no such routing file; check the path given to --routing-config, STEM_ROUTING_CONFIG or routing\(\{ file \}\)$/,
  });
  t.match(errorFor(t, 'default_queue: x\n', 'routing.toml'), /routing\.toml: a routing file must end in \.yaml, \.yml or \.json$/);
  t.match(errorFor(t, '# nothing yet\n'), /routing\.yaml: the routing config is empty; declare at least default_queue or queues/);
  t.match(
    errorFor(t, '- critical\n'),
    /routing\.yaml:1:1: the routing config must be a mapping of default_queue, queues, broadcasts and routes, not a list/,
  );
});

t.test('an alias that is also a declared queue is refused', async (t) => {
  const message = errorFor(t, 'default_queue:\n  queue: critical\n  alias: reports\nqueues:\n  reports: {}\n');
  t.match(message, /routing\.yaml:3:10: default_queue\.alias: "reports" is also a declared queue; an alias must be a name no queue has$/);
  t.match(errorFor(t, 'default_queue:\n  alias: main\n'), /routing\.yaml:2:3: default_queue: give the queue/);
});

t.test('a queue name with the broadcast prefix is refused', async (t) => {
  t.match(
    errorFor(t, 'default_queue: broadcast://maintenance\n'),
    /routing\.yaml:1:16: default_queue: "broadcast:\/\/maintenance" is not a queue name: declare broadcast channels under broadcasts/,
  );
});

t.test('options are checked when routing() is called', async (t) => {
  t.throws(() => routing({}), { message: /^routing: give exactly one of option "file" .* and option "config"/ });
  t.throws(() => routing({ file: 'a.yaml', config: {} }), { message: /^routing: give exactly one of option "file"/ });
  t.throws(() => routing({ config: 'critical' }), { message: /^routing config: must be an object/ });
});

t.test('a config given in code is checked the same way, naming the key', async (t) => {
  t.throws(() => routing({ config: { queues: { reports: { priority_range: [4, 3] } } } }), {
    message: /^routing config: queues\.reports\.priority_range: min 4 is greater than max 3/,
  });
  t.throws(() => routing({ config: { default_queue: 'critical', queus: {} } }), { message: /^routing config: queus: unknown key/ });
  t.throws(() => routing({ config: { routes: [{ match: { task: 'a.*' }, queue: 'nowhere' }] } }), {
    message: /^routing config: routes\[0\]\.queue: "nowhere" is not a declared queue \(none is declared\)/,
  });
});
