// The end-to-end scenarios every composition of the matrix runs (one test file per leg and form,
// so tap runs them in parallel). The producer and the worker are always separate Stems with connections of
// their own, and the worker is idle, blocked waiting for work, before each enqueue: issue 16 lost
// results only in that setup (a late `queued` write from the producer's connection landed after the
// worker's `succeeded` from another).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { canvasOf, task } from '../../plugins/canvas/index.js';
import { TaskFailedError, type Stem, type TaskStatus } from '../../sdk/index.js';
import { compositionsOf, type Composition, type Form, type Leg } from '../helpers/compositions.js';
import { runStem, startStem } from '../helpers/run-stem.js';
import { add, broken, flaky, greet, slow, total } from './fixtures/matrix-tasks.js';

/**
 * In-process round trips per composition, so 50 per leg over its two forms (MATRIX_ROUNDTRIPS
 * overrides; `npm run test:roundtrips` does the long run through the CLI). Before the state-order
 * fix (9114614) 50 per form lost 12 and 14 on redis-postgres and 2 on postgres/urls.
 */
const ROUND_TRIPS = Number(process.env.MATRIX_ROUNDTRIPS ?? 25);
/** CLI round trips per composition: each is a `stem enqueue` process (MATRIX_CLI_ROUNDTRIPS overrides). */
const CLI_ROUND_TRIPS = Number(process.env.MATRIX_CLI_ROUNDTRIPS ?? 3);
/** How long one round trip may wait for its result: far beyond a healthy one, so only a lost result reaches it. */
const RESULT_TIMEOUT_MS = 60_000;
/** A loop stops after this many lost results: the verdict is clear and each loss costs a full timeout (MATRIX_STOP_AFTER_LOST overrides, to measure). */
const STOP_AFTER_LOST = Number(process.env.MATRIX_STOP_AFTER_LOST ?? 3);
/** Tasks of the light chaos scenario (MATRIX_CHAOS_TASKS overrides). */
const CHAOS_TASKS = Number(process.env.MATRIX_CHAOS_TASKS ?? 40);
/** How long one in-process round trip may wait (MATRIX_RESULT_TIMEOUT_MS overrides, to measure losses faster). */
const ROUND_TRIP_TIMEOUT_MS = Number(process.env.MATRIX_RESULT_TIMEOUT_MS ?? RESULT_TIMEOUT_MS);

/** Opens a Stem on the composition, closed when `t` ends. */
async function stemOf(t: Test, composition: Composition): Promise<Stem> {
  const stem = await composition.create();
  t.teardown(() => stem.close());
  return stem;
}

/** Starts a worker in a Stem of its own, stopped when `t` ends. */
async function idleWorker(t: Test, composition: Composition): Promise<void> {
  const worker = (await stemOf(t, composition)).worker({ concurrency: 4 });
  await worker.start();
  await composition.waitForIdleConsumer();
}

/** The stored status of `id`, and a one-line description of it for failure messages. */
async function describeStatus(stem: Stem, id: string): Promise<string> {
  const status = await stem
    .status(id)
    .catch((error: unknown) => ({ state: `unreadable (${(error as Error).message})` }) as unknown as TaskStatus);
  return `state ${status.state}${status.attempt === undefined ? '' : `, attempt ${status.attempt}`}${status.result === undefined ? '' : `, result ${JSON.stringify(status.result)}`}`;
}

/** Registers the matrix scenarios of `leg` written in `form` on `t` (one file per leg and form, so that tap runs them in parallel). */
export async function matrixScenarios(t: Test, leg: Leg, form: Form): Promise<void> {
  for (const composition of await compositionsOf(t, leg, [form])) {
    const { label } = composition;

    t.test(`${label}: ${ROUND_TRIPS} round trips to an idle worker each return their result, and it stays stored`, async (t) => {
      await idleWorker(t, composition);
      const producer = await stemOf(t, composition);
      const lost: string[] = [];
      const done: Array<{ id: string; who: string }> = [];
      for (let i = 0; i < ROUND_TRIPS && lost.length < STOP_AFTER_LOST; i++) {
        await composition.waitForIdleConsumer();
        const who = `bob-${i}`;
        // Every other round trip comes from a fresh producer, as each `stem enqueue` process is:
        // its first enqueue sets up its connections and scripts while the worker is already waiting.
        const fresh = i % 2 === 1 ? await composition.create() : undefined;
        try {
          const handle = await (fresh ?? producer).enqueue(greet, { who });
          try {
            const result = await handle.result({ timeoutMs: ROUND_TRIP_TIMEOUT_MS });
            if (result === `hello ${who}`) done.push({ id: handle.id, who });
            else lost.push(`round trip ${i + 1} (${handle.id}): result ${JSON.stringify(result)}`);
          } catch (error) {
            lost.push(`round trip ${i + 1} (${handle.id}): ${(error as Error).message} (${await describeStatus(producer, handle.id)})`);
          }
        } finally {
          await fresh?.close();
        }
      }
      t.same(
        lost,
        [],
        `every result arrived (${done.length} of ${ROUND_TRIPS}${lost.length >= STOP_AFTER_LOST ? `, stopped after ${lost.length} lost` : ''})`,
      );
      // Any write still on its way has landed by now: a later `queued` must not have replaced a result.
      const overwritten: string[] = [];
      for (const { id, who } of done) {
        const status = await producer.status(id);
        if (status.state !== 'succeeded' || status.result !== `hello ${who}`)
          overwritten.push(`${id}: ${await describeStatus(producer, id)}`);
      }
      t.same(overwritten, [], 'every result is still stored as succeeded');
    });

    t.test(`${label}: a retried task ends with its last attempt's result, a failing one with its error`, async (t) => {
      await idleWorker(t, composition);
      const producer = await stemOf(t, composition);
      const retried = await producer.enqueue(flaky, { failures: 2 });
      t.same(await retried.result({ timeoutMs: RESULT_TIMEOUT_MS }), { attempt: 2 }, 'the third attempt succeeded');
      await composition.waitForIdleConsumer();
      const failing = await producer.enqueue(broken, { why: label });
      const error = await failing.result({ timeoutMs: RESULT_TIMEOUT_MS }).catch((e: unknown) => e);
      t.type(error, TaskFailedError, await describeStatus(producer, failing.id));
      t.match((error as Error).message, `broken on purpose: ${label}`);
      const [afterRetry, afterFailure] = [await producer.status(retried.id), await producer.status(failing.id)];
      t.match(afterRetry, { state: 'succeeded', attempt: 2, result: { attempt: 2 } }, 'the retried task stays succeeded');
      t.match(afterFailure, { state: 'failed', error: { message: `broken on purpose: ${label}` } }, 'the failed task stays failed');
    });

    t.test(`${label}: a chain and a chord finish with their results`, async (t) => {
      await idleWorker(t, composition);
      const producer = await stemOf(t, composition);
      const canvas = canvasOf(producer);
      const chainId = await canvas.chain([task(add, { a: 1, b: 2 }), task(add, { a: 10 }), task(add, { a: 100 })]);
      t.equal(await producer.handle<number>(chainId).result({ timeoutMs: RESULT_TIMEOUT_MS }), 113, '1 + 2, + 10, + 100');
      await composition.waitForIdleConsumer();
      const chordId = await canvas.chord({ body: [1, 2, 3].map((n) => task(add, { a: n, b: n })), callback: task(total, {}) });
      t.equal(await producer.handle<number>(chordId).result({ timeoutMs: RESULT_TIMEOUT_MS }), 12, '2 + 4 + 6');
      t.match(await producer.status(chainId), { state: 'succeeded', result: 113 }, 'the chain stays succeeded');
      t.match(await producer.status(chordId), { state: 'succeeded', result: 12 }, 'the chord stays succeeded');
    });

    t.test(`${label}: stem enqueue --wait against an idle stem worker start prints each result`, async (t) => {
      const worker = await startStem(['worker', 'start'], { env: composition.cliEnv });
      t.teardown(() => worker.stop('SIGKILL'));
      // Generous: a worker process starting (tsx, config, migrations) on a loaded 2-core machine is slow.
      await worker.waitForOutput(/ready on/, 180_000);
      for (let i = 0; i < CLI_ROUND_TRIPS; i++) {
        await composition.waitForIdleConsumer();
        const who = `bob-${i}`;
        const run = await runStem(
          ['enqueue', 'greet', '--args', JSON.stringify({ who }), '--wait', '--timeout', `${RESULT_TIMEOUT_MS / 1000}s`],
          {
            env: composition.cliEnv,
            timeoutMs: RESULT_TIMEOUT_MS + 60_000,
          },
        );
        t.equal(run.code, 0, `round trip ${i + 1} exits 0 ${run.stderr}`);
        t.match(run.stdout, new RegExp(`^[0-9a-f-]{36} succeeded "hello ${who}"$`, 'm'), `round trip ${i + 1} prints its result`);
      }
      t.equal(await worker.stop('SIGTERM'), 0, 'the worker stops cleanly');
      t.equal((worker.output().match(/greet\[[0-9a-f-]+\] succeeded/g) ?? []).length, CLI_ROUND_TRIPS, 'the worker ran each task once');
    });

    t.test(`${label}: a stem worker process killed -9 mid-burst loses nothing; another worker finishes its tasks`, async (t) => {
      const doomed = await startStem(['worker', 'start', '--concurrency', '4'], { env: composition.cliEnv });
      t.teardown(() => doomed.stop('SIGKILL'));
      const survivor = await startStem(['worker', 'start', '--concurrency', '4'], { env: composition.cliEnv });
      t.teardown(() => survivor.stop('SIGKILL'));
      await Promise.all([doomed.waitForOutput(/ready on/, 180_000), survivor.waitForOutput(/ready on/, 180_000)]);
      const producer = await stemOf(t, composition);
      const runLog = join(mkdtempSync(join(tmpdir(), 'stem-matrix-runs-')), 'runs.log');
      t.teardown(() => rmSync(dirname(runLog), { recursive: true, force: true }));
      const handles = await producer.enqueueMany(
        Array.from({ length: CHAOS_TASKS }, (_, n) => ({ task: slow, args: { n, ms: 150, runLog } })),
      );
      // Killed once it has finished a task and so, with 4 slots and work left, holds others in flight.
      const succeeded = /matrix\.slow\[[0-9a-f-]+\] succeeded/g;
      await doomed.waitForOutput(new RegExp(succeeded.source), 120_000);
      const killedAfter = (doomed.output().match(succeeded) ?? []).length;
      await doomed.stop('SIGKILL');
      const missing: string[] = [];
      for (const [n, handle] of handles.entries()) {
        const result = await handle.result({ timeoutMs: 60_000 }).catch((error: unknown) => `${(error as Error).message} (${handle.id})`);
        if (result !== n) missing.push(`task ${n}: ${JSON.stringify(result)}`);
      }
      t.same(missing, [], `every one of ${CHAOS_TASKS} tasks returned its result (the killed worker had finished ${killedAfter})`);
      // Counted from the tasks' own run log: the killed worker's last log lines may die in its stdout buffer.
      const runs = readFileSync(runLog, 'utf8').split('\n').filter(Boolean);
      t.same(new Set(runs).size, CHAOS_TASKS, 'every task started at least once');
      t.ok(
        runs.length <= CHAOS_TASKS + 8,
        `runs beyond one a task are only the killed worker's in-flight and reserved ones (${runs.length} runs of ${CHAOS_TASKS})`,
      );
    });
  }
}
