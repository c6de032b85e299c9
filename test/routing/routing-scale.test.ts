import t from 'tap';
import { GlobIndex } from '../../plugins/routing/glob-index.js';
import { parseRoutingText } from '../../plugins/routing/parse-routing-config.js';
import { RoutingTable } from '../../plugins/routing/index.js';
import { TaskGlob } from '../../plugins/routing/task-glob.js';

// Issue 26: checking a routing file was quadratic (4,000 queues took 7.2 s, 20,000 over a minute):
// every routing key and route was compared with every one before it. The check now looks the
// candidates up (GlobIndex). These tests assert what the check answers on large files, and that
// the lookup finds exactly what comparing with every earlier glob finds; never how long it took.

function largeFile(queues: number, routes: number, extra = ''): string {
  const lines = ['default_queue: q0', 'queues:'];
  for (let i = 0; i < queues; i++) lines.push(`  q${i}:`, `    routing_key: ["t${i}.*", "exact.${i}"]`);
  lines.push('routes:');
  for (let i = 0; i < routes; i++) {
    lines.push(`  - match: { task: "r${i}.*" }`, `    queue: q${i % queues}`);
    lines.push(`  - match: { headers: { tenant: "tenant-${i}" } }`, `    queue: q${(i + 1) % queues}`);
  }
  return `${lines.join('\n')}\n${extra}`;
}

t.test('a routing file of 20,000 queues and 10,000 routes is read, and routes as written', async (t) => {
  const table = new RoutingTable(parseRoutingText(largeFile(20_000, 5_000), 'large.yaml'));
  const dump = table.describe();
  t.equal(dump.queues.length, 20_000);
  t.equal(dump.routes.length, 10_000);
  t.same(dump.queues[12_345], { name: 'q12345', routingKeys: ['t12345.*', 'exact.12345'], priorityRange: null });
  t.match(table.resolve('t19999.render'), { queue: 'q19999', matchedBy: 'queues.q19999.routing_key' });
  t.match(table.resolve('exact.7'), { queue: 'q7', matchedBy: 'queues.q7.routing_key' });
  t.match(table.resolve('r4321.x'), { queue: 'q4321', matchedBy: 'routes[8642]' });
  t.match(table.resolve('other', { tenant: 'tenant-4999' }), { queue: 'q5000', matchedBy: 'routes[9999]' });
});

t.test('in a large file, a routing key shadowed by one thousands of queues earlier is still named', async (t) => {
  // The last queue gets a key that queue q17's "t17.*" (line 38) takes first.
  const shadowed = largeFile(5_000, 0).replace('routing_key: ["t4999.*", "exact.4999"]', 'routing_key: ["t4999.*", "t17.weekly"]');
  t.throws(() => parseRoutingText(shadowed, 'large.yaml'), {
    message:
      /^large\.yaml:\d+:\d+: queues\.q4999\.routing_key: "t17\.weekly" can never match: queues\.q17\.routing_key "t17\.\*" \(large\.yaml:38:\d+\) takes every task it matches first/,
  });
});

t.test('in a large file, a route shadowed by an earlier route (by glob, or by headers alone) is named', async (t) => {
  const byGlob = largeFile(100, 3_000, '  - match: { task: "r2500.daily" }\n    queue: q1\n');
  t.throws(() => parseRoutingText(byGlob, 'large.yaml'), {
    message: /routes\[6000\]: can never match: routes\[5000\] takes every task it matches first/,
  });
  const byHeader = largeFile(100, 3_000, '  - match: { task: "x.*", headers: { tenant: tenant-2999, region: eu } }\n    queue: q1\n');
  t.throws(() => parseRoutingText(byHeader, 'large.yaml'), {
    message: /routes\[6000\]: can never match: routes\[5999\] takes every task it matches first/,
  });
  const forced = largeFile(100, 3_000, '  - match: { task: "x.*", headers: { tenant: tenant-2999 } }\n    queue: q1\n    force: true\n');
  t.doesNotThrow(
    () => parseRoutingText(forced, 'large.yaml'),
    'a forced route after an unforced one still matches explicit-queue enqueues',
  );
  const catchAll = largeFile(10, 2, '  - match: { task: "*" }\n    queue: q1\n  - match: { task: "late.*" }\n    queue: q2\n');
  t.throws(() => parseRoutingText(catchAll, 'large.yaml'), { message: /routes\[5\]: can never match: routes\[4\]/ });
});

t.test('the index finds exactly the earlier globs that cover a glob, as comparing with each would', async (t) => {
  // Random globs over a small alphabet, so that covering pairs are frequent.
  let seed = 26;
  const random = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
  const alphabet = ['a', 'b', '.', '*', '?'];
  const globs = Array.from(
    { length: 400 },
    () => new TaskGlob(Array.from({ length: 1 + random(5) }, () => alphabet[random(alphabet.length)]).join('')),
  );
  const index = new GlobIndex<number>();
  let pairs = 0;
  let mismatches = 0;
  globs.forEach((glob, i) => {
    const expected = globs.slice(0, i).flatMap((outer, j) => (outer.covers(glob) ? [j] : []));
    const found = index.coverersOf(glob);
    pairs += expected.length;
    if (JSON.stringify(found) !== JSON.stringify(expected)) mismatches++;
    index.add(glob, i);
  });
  t.equal(mismatches, 0, 'no glob got another answer than the full comparison');
  t.ok(pairs > 100, `the case has covering pairs to find (${pairs})`);
});
