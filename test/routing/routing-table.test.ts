import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Envelope } from '../../sdk/envelope.js';
import { Stem } from '../../sdk/kernel.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { defineTask } from '../../sdk/task.js';
import { CLAMPED_META, RoutingTable, routing } from '../../plugins/routing/index.js';

const fixture = fileURLToPath(new URL('../../fixtures/routing.yaml', import.meta.url));

/** The fixture plus routes, as a config in code. */
const withRoutes = {
  default_queue: { queue: 'critical', alias: 'main', fallbacks: ['legacy'] },
  queues: {
    reports: { routing_key: 'reports.generate', priority_range: [2, 7] },
    emails: { routing_key: ['billing.email-*', 'billing.notice-?'] },
    vip: { priority_range: { min: 8, max: 9 } },
  },
  broadcasts: { maintenance: { delivery: 'fanout' } },
  routes: [
    { match: { task: 'reports.*', headers: { tenant: 'acme' } }, queue: 'vip' },
    { match: { task: 'audit.*' }, queue: 'vip', force: true, priority: 3 },
    { match: { task: ['maintenance.*', 'ops.flush'] }, broadcast: 'maintenance', priority: 1 },
    { match: { headers: { region: 'eu' } }, queue: 'emails' },
  ],
};

/** A plugin that records every envelope as published. */
function recordPublished(into: Envelope[]): StemPlugin {
  return { name: 'record', apply: (stem) => stem.hooks.published.tap('record', (envelopes) => void into.push(...envelopes)) };
}

t.test('the fixture: reports.generate goes to reports, its priority clamped into 2–7', async (t) => {
  const table = RoutingTable.fromFile(fixture);
  t.same(table.resolve('reports.generate', {}, undefined, 9), {
    queue: 'reports',
    priority: 7,
    clamped: { from: 9, to: 7 },
    matchedBy: 'queues.reports.routing_key',
  });
  t.same(table.resolve('reports.generate', {}, undefined, 0), {
    queue: 'reports',
    priority: 2,
    clamped: { from: 0, to: 2 },
    matchedBy: 'queues.reports.routing_key',
  });
  t.same(table.resolve('reports.generate', {}, undefined, 4), {
    queue: 'reports',
    priority: 4,
    clamped: null,
    matchedBy: 'queues.reports.routing_key',
  });
});

t.test('the fixture: billing.email-receipt goes to emails and anything else to critical', async (t) => {
  const table = RoutingTable.fromFile(fixture);
  t.same(table.resolve('billing.email-receipt'), { queue: 'emails', priority: 5, clamped: null, matchedBy: 'queues.emails.routing_key' });
  t.same(table.resolve('billing.refund'), { queue: 'critical', priority: 5, clamped: null, matchedBy: 'default_queue' });
  t.same(table.resolve('reports.generate.extra').queue, 'critical', 'a routing key without a wildcard matches that one name only');
  t.same(table.broadcastChannels, ['maintenance']);
  t.same(table.defaultWorkerQueues, ['critical']);
});

t.test('a glob: * takes any run of characters (dots too), ? exactly one', async (t) => {
  const table = RoutingTable.fromObject(withRoutes);
  t.equal(table.resolve('billing.email-').queue, 'emails');
  t.equal(table.resolve('billing.email-a.b').queue, 'emails');
  t.equal(table.resolve('billing.notice-x').queue, 'emails', 'the second glob of a list');
  t.equal(table.resolve('billing.notice-xy').queue, 'critical');
  t.equal(table.resolve('billingXemail-x').queue, 'critical', 'a dot is a dot');
});

t.test('an explicit queue beats a route and a routing key; its range still clamps', async (t) => {
  const table = RoutingTable.fromObject(withRoutes);
  t.same(table.resolve('reports.generate', { tenant: 'acme' }, 'emails'), {
    queue: 'emails',
    priority: 5,
    clamped: null,
    matchedBy: 'explicit queue',
  });
  t.same(table.resolve('reports.generate', {}, 'vip', 1), {
    queue: 'vip',
    priority: 8,
    clamped: { from: 1, to: 8 },
    matchedBy: 'explicit queue',
  });
  t.equal(table.resolve('anything', {}, 'main').queue, 'critical', 'the alias of the default queue stands for it');
});

t.test('a forced route beats an explicit queue, and its priority override is applied', async (t) => {
  const table = RoutingTable.fromObject(withRoutes);
  t.same(table.resolve('audit.login', {}, 'emails', 9), { queue: 'vip', priority: 8, clamped: { from: 3, to: 8 }, matchedBy: 'routes[1]' });
  t.same(table.resolve('audit.login'), { queue: 'vip', priority: 8, clamped: { from: 3, to: 8 }, matchedBy: 'routes[1]' });
});

t.test('header routes: every header must be equal; routes are tried before routing keys', async (t) => {
  const table = RoutingTable.fromObject(withRoutes);
  t.same(table.resolve('reports.generate', { tenant: 'acme' }, undefined, 5), {
    queue: 'vip',
    priority: 8,
    clamped: { from: 5, to: 8 },
    matchedBy: 'routes[0]',
  });
  t.equal(table.resolve('reports.generate', { tenant: 'globex' }).queue, 'reports', 'another tenant falls through to the routing key');
  t.equal(table.resolve('misc.task', { region: 'eu' }).matchedBy, 'routes[3]', 'a route may match on headers alone');
  t.equal(table.resolve('misc.task', { region: 'us' }).queue, 'critical');
});

t.test('a broadcast route sends the task to broadcast://<name>, with its priority and no clamp', async (t) => {
  const table = RoutingTable.fromObject(withRoutes);
  t.same(table.resolve('maintenance.vacuum', {}, undefined, 9), {
    queue: 'broadcast://maintenance',
    priority: 1,
    clamped: null,
    matchedBy: 'routes[2]',
  });
  t.equal(table.resolve('ops.flush').queue, 'broadcast://maintenance');
  t.equal(table.resolve('maintenance.vacuum', {}, 'emails').queue, 'emails', 'an explicit queue beats an unforced broadcast route');
});

t.test('a task that names its own queue keeps it unless a route or routing key says otherwise', async (t) => {
  const table = RoutingTable.fromFile(fixture);
  t.same(table.resolve('misc.task', {}, undefined, 5, 'slow'), { queue: 'slow', priority: 5, clamped: null, matchedBy: 'task queue' });
  t.equal(table.resolve('reports.generate', {}, undefined, 5, 'slow').queue, 'reports');
});

t.test('enqueue: the routing plugin routes envelopes and records a clamp in meta', async (t) => {
  const published: Envelope[] = [];
  const ownQueue = defineTask({ name: 'misc.own', options: { queue: 'slow' }, handler: async () => null });
  const stem = await Stem.create({ plugins: [routing({ config: withRoutes }), recordPublished(published)] });
  t.teardown(() => stem.close());
  await stem.enqueue('reports.generate', {}, { priority: 9 });
  await stem.enqueue('reports.generate', {}, { priority: 0, queue: 'emails' });
  await stem.enqueue('reports.generate', {}, { headers: { tenant: 'acme' } });
  await stem.enqueue('audit.login', {}, { queue: 'emails' });
  await stem.enqueue('maintenance.vacuum', {});
  await stem.enqueue('broadcast://maintenance', {});
  await stem.enqueue(ownQueue, null);
  await stem.enqueue('misc.other', {});
  await stem.enqueue('misc.other', {}, { queue: 'main' });
  const seen = published.map((envelope) => [envelope.name, envelope.queue, envelope.priority, envelope.meta[CLAMPED_META] ?? null]);
  t.same(seen, [
    ['reports.generate', 'reports', 7, { from: 9, to: 7 }],
    ['reports.generate', 'emails', 0, null],
    ['reports.generate', 'vip', 8, { from: 5, to: 8 }],
    ['audit.login', 'vip', 8, { from: 3, to: 8 }],
    ['maintenance.vacuum', 'broadcast://maintenance', 1, null],
    ['maintenance', 'broadcast://maintenance', 5, null],
    ['misc.own', 'slow', 5, null],
    ['misc.other', 'critical', 5, null],
    ['misc.other', 'critical', 5, null],
  ]);
});

t.test('without default_queue, a task that names no queue keeps the kernel default', async (t) => {
  const published: Envelope[] = [];
  const stem = await Stem.create({
    defaultQueue: 'jobs',
    plugins: [routing({ config: { queues: { emails: { routing_key: 'billing.*' } } } }), recordPublished(published)],
  });
  t.teardown(() => stem.close());
  await stem.enqueue('misc.task', {});
  await stem.enqueue('billing.refund', {});
  t.same(
    published.map((envelope) => envelope.queue),
    ['jobs', 'emails'],
  );
});

t.test('workers naming no broadcasts subscribe to every broadcast; naming none ([]) or some is respected', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ config: withRoutes })] });
  t.teardown(() => stem.close());
  t.same(stem.worker().broadcasts, ['maintenance']);
  t.same(stem.worker({ broadcasts: [] }).broadcasts, []);
  t.same(stem.worker({ broadcasts: ['other'] }).broadcasts, ['other']);
});

t.test('workers naming no queues consume the default queue and its fallbacks; an alias stands for the default queue', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ config: withRoutes })] });
  t.teardown(() => stem.close());
  t.same(stem.worker().queues, ['critical', 'legacy']);
  t.same(stem.worker({ queues: ['main', 'reports', 'critical'] }).queues, ['critical', 'reports']);
  const plain = await Stem.create({ plugins: [routing({ config: { queues: { a: {} } } })] });
  t.teardown(() => plain.close());
  t.same(plain.worker().queues, ['default'], 'without default_queue the kernel default stays');
});

t.test('describe() lists the table as plain data', async (t) => {
  t.same(RoutingTable.fromFile(fixture).describe(), {
    source: 'fixtures/routing.yaml',
    defaultQueue: { queue: 'critical', alias: 'default', fallbacks: [] },
    queues: [
      { name: 'reports', routingKeys: ['reports.generate'], priorityRange: { min: 2, max: 7 } },
      { name: 'emails', routingKeys: ['billing.email-*'], priorityRange: null },
    ],
    broadcasts: [{ name: 'maintenance', address: 'broadcast://maintenance', delivery: 'fanout' }],
    routes: [],
  });
});
