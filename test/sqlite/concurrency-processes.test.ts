// Per-key concurrency across worker PROCESSES on one SQLite file (docs/flow-control.md): three
// `stem worker start` processes share 200 tasks of 10 tenants with limit 2, and the start and end
// times the tasks record show no tenant ever ran more than 2 at once. And the CLI's run-time limit,
// per-key counts and per-worker key counts (stem worker stats) work on SQLite.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { control } from '../../plugins/control/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import { CONCURRENCY_HEADERS, defineTask, Stem } from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { waitFor } from '../contract/support.js';
import { type RunningStem, startStem } from '../helpers/run-stem.js';
import { keyed } from './fixtures/keyed-tasks.js';
import { tempDir } from './sqlite-harness.js';

t.setTimeout(600_000);

const dir = tempDir('keyed-processes');
t.teardown(() => dir.cleanup());
const registry = join(import.meta.dirname, 'fixtures', 'keyed-tasks.ts');

/** The most runs of one tenant that overlapped in time, per tenant, from `<tenant> <start> <end> <pid>` lines. */
function mostAtOnce(lines: string[]): Map<string, number> {
  const events = new Map<string, Array<[time: number, delta: number]>>();
  for (const line of lines) {
    const [tenant, start, end] = line.split(' ');
    let list = events.get(tenant!);
    if (list === undefined) events.set(tenant!, (list = []));
    list.push([Number(start), 1], [Number(end), -1]);
  }
  const most = new Map<string, number>();
  for (const [tenant, list] of events) {
    // An end and a start in the same millisecond do not overlap: the next task starts only after the ack.
    list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peak = 0;
    for (const [, delta] of list) peak = Math.max(peak, (running += delta));
    most.set(tenant, peak);
  }
  return most;
}

t.test('three stem worker start processes on one file: no tenant runs more than its limit of 2 at once', async (t) => {
  const runsDir = join(dir.dir, 'runs');
  mkdirSync(runsDir);
  const url = dir.url('processes.db');
  const producer = await Stem.create({ plugins: [sqlite({ url })], tasks: [keyed] });
  const workers: RunningStem[] = [];
  t.teardown(async () => {
    await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
    await producer.close();
  });
  const flags = ['--broker', url, '--backend', url, '--registry', registry, '--queues', 'keyed', '--concurrency', '10'];
  for (let i = 0; i < 3; i++) {
    workers.push(
      await startStem(['worker', 'start', ...flags], { env: { MP_RUNS_DIR: runsDir, STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' } }),
    );
  }
  await Promise.all(workers.map((worker) => worker.waitForOutput(/ready on .*consuming/, 180_000)));

  const handles = await producer.enqueueMany(
    Array.from({ length: 200 }, (_, i) => ({ task: keyed, args: { tenant: `tenant-${i % 10}`, i } })),
  );
  const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 180_000 })));
  t.same(
    results,
    handles.map((_, i) => i),
    'every task ran and succeeded',
  );
  const lines = existsSync(runsDir)
    ? readdirSync(runsDir).flatMap((file) =>
        readFileSync(join(runsDir, file), 'utf8')
          .split('\n')
          .filter((line) => line !== ''),
      )
    : [];
  t.equal(lines.length, 200, 'each task ran once');
  const most = mostAtOnce(lines);
  t.same([...most.keys()].sort(), Array.from({ length: 10 }, (_, i) => `tenant-${i}`).sort(), 'all 10 tenants ran');
  t.same(
    [...most.values()].filter((peak) => peak > 2),
    [],
    `no tenant ran more than 2 at once (peaks: ${[...most.values()].join(' ')})`,
  );
  const pids = new Set(lines.map((line) => line.split(' ')[3]));
  t.ok(pids.size >= 2, `the work was shared by ${pids.size} processes`);
  t.same(await producer.broker.concurrency!.stats('keyed'), [], 'no key holds or waits for a slot any more');
});

t.test('stem worker concurrency-limit and stem queues list --keys on a SQLite file', async (t) => {
  const url = dir.url('cli.db');
  const queue = 'cli-keyed';
  const stem = await Stem.create({ plugins: [sqlite({ url })] });
  t.teardown(() => stem.close());
  await stem.enqueueMany(
    Array.from({ length: 5 }, () => ({
      task: 'cli.keyed',
      args: {},
      options: { queue, headers: { [CONCURRENCY_HEADERS.key]: 'tenant-42', [CONCURRENCY_HEADERS.limit]: '1' } },
    })),
  );
  // One worker's claim: the key lets one task in.
  const consumer = await stem.broker.consumer({ queues: [queue], consumerId: 'cli-test' });
  t.teardown(() => consumer.close());
  t.equal((await consumer.fetch(10, AbortSignal.timeout(30_000))).length, 1, 'one task of the key let in');
  const flags = ['--broker', url, '--queue', queue];

  const shown = await runInProcess(['worker', 'concurrency-limit', ...flags, '--json']);
  t.equal(shown.code, 0, shown.stderr);
  t.same(JSON.parse(shown.stdout), { queue, keys: [{ key: 'tenant-42', running: 1, waiting: 4, limit: 1 }] }, 'one running, four waiting');

  const raised = await runInProcess(['worker', 'concurrency-limit', 'tenant-42', '3', ...flags]);
  t.equal(raised.code, 0, raised.stderr);
  t.match(raised.stdout, /concurrency limit of tenant-42 on .*: 3/);
  t.equal((await consumer.fetch(10, AbortSignal.timeout(30_000))).length, 2, 'two more let in once the limit is 3');

  const listed = await runInProcess(['queues', 'list', '--broker', url, '--keys', '--json']);
  t.equal(listed.code, 0, listed.stderr);
  t.same(
    (JSON.parse(listed.stdout) as Array<{ queue: string; keys?: unknown }>).find((row) => row.queue === queue)?.keys,
    [{ key: 'tenant-42', running: 3, waiting: 2, limit: 3 }],
    'queues list --keys shows the running and waiting tasks of the key and its run-time limit',
  );

  const reset = await runInProcess(['worker', 'concurrency-limit', 'tenant-42', 'default', ...flags]);
  t.equal(reset.code, 0, reset.stderr);
  t.equal((await stem.broker.concurrency!.stats(queue))[0]?.limit, 1, 'back to the limit the tasks carry');
});

t.test('stem worker stats shows the tasks each worker runs per concurrency key on a SQLite file', async (t) => {
  const url = dir.url('stats.db');
  const id = 'keys-stats';
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let running = 0;
  const sync = defineTask({
    name: 'keys.sync',
    options: { queue: id, concurrencyKey: (args: { tenant: string }) => args.tenant, concurrencyLimit: 2 },
    handler: async () => {
      running++;
      await released;
      running--;
    },
  });
  const stem = await Stem.create({ plugins: [sqlite({ url }), control({ namespace: id })], tasks: [sync] });
  t.teardown(() => stem.close());
  const worker = stem.worker({ queues: [id], concurrency: 10 });
  await worker.start();
  t.teardown(() => worker.stop({ graceMs: 0 }));
  await stem.enqueueMany([
    ...Array.from({ length: 3 }, () => ({ task: sync, args: { tenant: 'acme' } })),
    { task: sync, args: { tenant: 'globex' } },
  ]);
  t.ok(await waitFor(() => running === 3, 60_000), 'two of acme and one of globex run; the third of acme waits');
  // Named (-w): the request ends once the worker answered, 30 s is a ceiling (a broadcast took 5 s, a stall could outlast).
  const stats = await runInProcess(['worker', 'stats', '--json', '--broker', url, '--namespace', id, '-w', worker.id, '--timeout', '30s']);
  t.equal(stats.code, 0, stats.stderr);
  const [answer] = JSON.parse(stats.stdout) as Array<{ runningKeys: unknown }>;
  t.same(
    answer?.runningKeys,
    [
      { queue: id, key: 'acme', running: 2 },
      { queue: id, key: 'globex', running: 1 },
    ],
    'runningKeys: per queue and key',
  );
  release();
});
