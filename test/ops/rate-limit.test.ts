import t from 'tap';
import { defineTask, type TaskContext } from 'stem';
import { ControlClient } from '../../plugins/control/index.js';
import { parseRateLimit, RATE_LIMIT_COMMAND, setRateLimit } from '../../plugins/rate-limit/index.js';
import { waitFor } from '../helpers/wait.js';
import { opsCluster } from './ops-harness.js';

t.test('rates parse into one-token buckets and bad ones are refused with the fix', async (t) => {
  t.same(parseRateLimit('10/s', 'x'), { limit: 1, intervalMs: 100 });
  t.same(parseRateLimit('100/m', 'x'), { limit: 1, intervalMs: 600 });
  t.same(parseRateLimit('1000/h', 'x'), { limit: 1, intervalMs: 3_600 });
  t.throws(
    () => parseRateLimit('10 per second', 'task "a": option "rateLimit"'),
    /task "a": option "rateLimit": "10 per second" is not a rate; use tasks per unit like '10\/s'/,
  );
  t.throws(() => parseRateLimit('0/s', 'x'), /is not a rate/);
});

t.test("a '5/s' limit shared by 3 workers paces their starts: fifteen take two seconds at least", async (t) => {
  const cluster = await opsCluster(t, 'rate-shared');
  if (!cluster) return;
  const starts: number[] = [];
  const tick = defineTask({
    name: 'ops.rate.tick',
    options: { rateLimit: '5/s' },
    handler: async () => {
      starts.push(Date.now());
    },
  });
  for (let i = 0; i < 3; i++) {
    const stem = await cluster.stem([tick]);
    await stem.worker({ queues: ['rated'], concurrency: 4 }).start();
  }
  const producer = await cluster.stem([tick]);
  // No token is taken before the enqueue. The bucket holds 5 and refills one every 200 ms, so the 15th start needs ten
  // refills: 2 s after the enqueue at the soonest (1.8 s allowed, a tolerance of one token). Counted from the enqueue,
  // a slow machine can only make the starts later. (Counting starts per wall-clock second failed when a stalled process
  // ran starts whose tokens were taken in different seconds together.)
  const enqueuedAt = Date.now();
  await producer.enqueueMany(Array.from({ length: 30 }, () => ({ task: tick, args: {}, options: { queue: 'rated' } })));
  await waitFor(() => starts.length >= 15, 'fifteen starts: the limit is a pace, not a stop', 60_000);
  const fifteenth = starts.slice().sort((a, b) => a - b)[14]! - enqueuedAt;
  t.ok(fifteenth >= 1_800, `the 15th start came ${fifteenth} ms after the enqueue: no more than 5 at once, then 5 a second`);
});

t.test('a denied task is deferred, not failed; per tenant; and the rate changes at run time over control', async (t) => {
  const cluster = await opsCluster(t, 'rate-tenant');
  if (!cluster) return;
  const ran: string[] = [];
  const report = defineTask({
    name: 'ops.rate.report',
    options: { rateLimit: '1/h' },
    handler: async (_args: Record<string, never>, ctx: TaskContext) => {
      ran.push(ctx.headers.tenant ?? '-');
    },
  });
  const workerSide = await cluster.stem([report]);
  const worker = workerSide.worker({ queues: ['reports'] });
  await worker.start();
  const producer = await cluster.stem([report]);
  const acme = await producer.enqueue(report, {}, { queue: 'reports', headers: { tenant: 'acme' } });
  const globex = await producer.enqueue(report, {}, { queue: 'reports', headers: { tenant: 'globex' } });
  await acme.result({ timeoutMs: 60_000 });
  await globex.result({ timeoutMs: 60_000 });
  t.same(ran.sort(), ['acme', 'globex'], 'each tenant has its own bucket');

  const second = await producer.enqueue(report, {}, { queue: 'reports', headers: { tenant: 'acme' } });
  await waitFor(
    async () => (await producer.broker.pending('reports')) === 1 && (await producer.broker.inflight('reports')) === 0,
    'the second acme report is deferred back to the queue',
  );
  t.equal((await second.status()).state, 'queued', 'deferred, not failed');
  t.equal(worker.stats().failed, 0);

  await setRateLimit(producer, report.name, '100/s');
  const replies = await new ControlClient(producer).request(
    RATE_LIMIT_COMMAND,
    { task: report.name, rateLimit: '100/s' },
    { destination: [worker.id], timeout: '30s' },
  );
  t.same(replies[0]?.reply, { task: report.name, rateLimit: '100/s' });
  // the deferred delivery comes back when its token was due (an hour); a fresh one runs at the new rate
  const third = await producer.enqueue(report, {}, { queue: 'reports', headers: { tenant: 'acme' } });
  t.equal(await third.result({ timeoutMs: 60_000 }), undefined, 'the new rate lets it run');

  const later = await cluster.stem([report]);
  const lateWorker = later.worker({ queues: ['reports-2'] });
  await lateWorker.start();
  const [ping] = await new ControlClient(producer).request(
    RATE_LIMIT_COMMAND,
    { task: 'other.task' },
    { destination: [lateWorker.id], timeout: '30s' },
  );
  t.same(ping?.reply, { task: 'other.task', rateLimit: null }, 'an unlimited task reports null');
  await setRateLimit(producer, report.name, undefined);
});
