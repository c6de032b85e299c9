// Several worker PROCESSES on one SQLite file: every task runs, and kill -9 of workers in the
// middle of a burst loses nothing (a killed worker's tasks run again once their lease runs out).
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Stem } from '../../sdk/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import { startScript, type RunningStem } from '../helpers/run-stem.js';
import { sleep } from '../helpers/wait.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

t.setTimeout(600_000);

const dir = tempDir('processes');
t.teardown(() => dir.cleanup());
const url = dir.url();
const script = join(import.meta.dirname, 'fixtures', 'sqlite-worker.ts');

/** A cluster of worker processes on the file, in a namespace of its own, and a producer Stem in this process. */
async function cluster(t: Test) {
  const namespace = uniqueNamespace('proc');
  const runsDir = join(dir.dir, namespace);
  mkdirSync(runsDir);
  const producer = await Stem.create({ plugins: [sqlite({ url, namespace })] });
  const workers: RunningStem[] = [];
  t.teardown(async () => {
    await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
    await producer.close();
  });
  const start = async (): Promise<RunningStem> => {
    const worker = await startScript(script, { env: { SQ_URL: url, SQ_NAMESPACE: namespace, SQ_RUNS_DIR: runsDir } });
    workers.push(worker);
    await worker.waitForOutput(/ready \d+/, 120_000);
    return worker;
  };
  /** Runs per task id, and which pids ran them. */
  const runs = (): Map<string, number[]> => {
    const byTask = new Map<string, number[]>();
    if (!existsSync(runsDir)) return byTask;
    for (const file of readdirSync(runsDir)) {
      for (const line of readFileSync(join(runsDir, file), 'utf8').split('\n')) {
        if (line === '') continue;
        const [id, pid] = line.split(' ');
        byTask.set(id!, [...(byTask.get(id!) ?? []), Number(pid)]);
      }
    }
    return byTask;
  };
  /** Waits until every id has a succeeded state; returns the ids that have not (after `timeoutMs`). */
  const unfinished = async (ids: string[], timeoutMs: number): Promise<string[]> => {
    const deadline = Date.now() + timeoutMs;
    let left = ids;
    while (left.length > 0 && Date.now() < deadline) {
      const states = await Promise.all(left.map((id) => producer.backend.get(id)));
      left = left.filter((_, i) => states[i]?.state !== 'succeeded');
      if (left.length > 0) await sleep(250);
    }
    return left;
  };
  return { producer, workers, start, runs, unfinished };
}

t.test('three worker processes on one file share a burst: every task runs once, on several workers', async (t) => {
  const c = await cluster(t);
  await Promise.all([c.start(), c.start(), c.start()]);
  const handles = await c.producer.enqueueMany(Array.from({ length: 600 }, (_, n) => ({ task: 'sq.burst', args: { n, ms: 2 } })));
  const results = await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 120_000 })));
  t.same(
    results,
    handles.map((_, n) => n),
    'every result arrived in this process',
  );
  const runs = c.runs();
  t.equal(runs.size, 600, 'every task ran');
  t.same(
    [...runs.entries()].filter(([, pids]) => pids.length > 1),
    [],
    'none ran twice',
  );
  const pids = new Set([...runs.values()].flat());
  t.ok(pids.size >= 2, `the work was shared by ${pids.size} processes`);
  t.equal(await c.producer.broker.pending('default'), 0, 'the queue is empty');
});

t.test('kill -9 of worker processes mid-burst loses nothing; duplicates only of tasks a killed worker held', async (t) => {
  const c = await cluster(t);
  await Promise.all([c.start(), c.start(), c.start()]);
  const total = 1_000;
  const handles = await c.producer.enqueueMany(
    Array.from({ length: total }, (_, n) => ({ task: 'sq.burst', args: { n, ms: 30 + (n % 40) } })),
  );
  const killed: number[] = [];
  const replacements: Array<Promise<unknown>> = [];
  for (let round = 0; round < 3; round++) {
    await sleep(500);
    const alive = c.workers.filter(
      (worker) =>
        worker.child.exitCode === null &&
        worker.child.signalCode === null &&
        !killed.includes(worker.child.pid!) &&
        /ready/.test(worker.output()),
    );
    const victim = alive[Math.floor(Math.random() * alive.length)]!;
    killed.push(victim.child.pid!);
    victim.child.kill('SIGKILL');
    // The replacement starts in the background: the kills come while the burst runs.
    replacements.push(c.start());
  }
  const finishedAtLastKill = c.runs().size;
  t.ok(finishedAtLastKill < total, `the last kill came mid-burst (${finishedAtLastKill} of ${total} done)`);
  await Promise.all(replacements);
  const ids = handles.map((handle) => handle.id);
  const left = await c.unfinished(ids, 180_000);
  const runs = c.runs();
  t.equal(left.length, 0, `lost 0 of ${total} (killed ${killed.length} workers: ${killed.join(', ')})`);
  t.equal(await c.producer.broker.pending('default'), 0, 'nothing waits in the queue');
  t.equal(await c.producer.broker.inflight('default'), 0, 'nothing is leased');
  t.equal((await c.producer.broker.listDeadLetters('default')).total, 0, 'no dead letters');
  const duplicates = [...runs.entries()].filter(([, pids]) => pids.length > 1);
  // A task that finished on a worker killed before its ack reached the file runs again elsewhere.
  t.same(
    duplicates.filter(([, pids]) => !pids.some((pid) => killed.includes(pid))),
    [],
    'every duplicate first ran on a killed worker',
  );
  t.comment(`runs: ${[...runs.values()].flat().length} for ${total} tasks; duplicates: ${duplicates.length}`);
});
