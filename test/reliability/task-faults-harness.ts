// The shared scenario of the task-fault tests: in a queue of its own, one bad task beside ten
// healthy ones; the worker runs in a child process (test/reliability/fault-worker.ts).
import type { Test } from 'tap';
import { fileURLToPath } from 'node:url';
import type { Stem } from '../../sdk/index.js';
import { runNode, startNode, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';

/** The worker script. */
export const FAULT_WORKER = fileURLToPath(new URL('./fault-worker.ts', import.meta.url));

/** A bad task and the failure it must end in. */
export interface Fault {
  task: string;
  type: string;
  reason: string;
  message: RegExp;
}

/** The bad tasks whose fault the worker can lay at their door, on every store. */
export const ATTRIBUTABLE_FAULTS: readonly Fault[] = [
  { task: 'fault.bigint', type: 'ResultNotSerializableError', reason: 'result-not-serializable', message: /BigInt/ },
  { task: 'fault.cycle', type: 'ResultNotSerializableError', reason: 'result-not-serializable', message: /circular/ },
  { task: 'fault.tojson', type: 'ResultNotSerializableError', reason: 'result-not-serializable', message: /toJSON refuses/ },
  { task: 'fault.timer', type: 'TaskAsyncError', reason: 'max-retries-exhausted', message: /callback it scheduled.*thrown in a timer/ },
  {
    task: 'fault.rejection',
    type: 'TaskAsyncError',
    reason: 'max-retries-exhausted',
    message: /rejected and nothing awaited it.*a promise nobody awaited/,
  },
];

/**
 * A result that encodes once (the worker's check) and throws the second time: only the backend's
 * write finds it out, so the batch must be split down to it (stores that encode: Redis, Postgres).
 */
export const LATE_FAULT: Fault = {
  task: 'fault.flaky-tojson',
  type: 'ResultNotSerializableError',
  reason: 'result-not-serializable',
  message: /toJSON refuses the second time/,
};

/** An error no task context names (a throw in a microtask): the process dies, the tasks go back. */
export const FATAL_FAULT: Fault = {
  task: 'fault.microtask',
  type: 'TaskAsyncError',
  reason: 'max-retries-exhausted',
  message: /thrown in a microtask/,
};

/** How many times each healthy task of `queue` ran to its end, read from the workers' output. */
export function doneCounts(output: string, queue: string): number[] {
  const dones = new Array<number>(10).fill(0);
  for (const match of output.matchAll(/^done (\S+) (\d+)$/gm)) if (match[1] === queue) dones[Number(match[2])]! += 1;
  return dones;
}

/** The in-memory scenario: one child enqueues, runs and reports every case; one subtest per case. */
export async function memoryScenarios(t: Test, faults: readonly Fault[]): Promise<void> {
  const run = await runNode(['--import', 'tsx', FAULT_WORKER], {
    env: { FAULT_STORE: 'memory', FAULT_QUEUES: faults.map((fault) => fault.task).join(',') },
    timeoutMs: 180_000,
  });
  for (const fault of faults) {
    t.test(
      `${fault.task}: fails alone as ${fault.type} (${fault.reason}); the ten healthy tasks beside it succeed once each`,
      async (t) => {
        const line = new RegExp(`^summary ${fault.task.replace('.', '\\.')} (.*)$`, 'm').exec(run.stdout);
        t.ok(line, `the worker process lived to report (exit ${run.code}):\n${run.stderr.slice(0, 2000)}`);
        if (!line) return;
        const summary = JSON.parse(line[1]!) as {
          bad: { state: string; error: { type: string; message: string } };
          healthy: string[];
          letters: Array<{ reason: string }>;
        };
        t.equal(summary.bad.state, 'failed', 'the bad task failed');
        t.equal(summary.bad.error.type, fault.type);
        t.match(summary.bad.error.message, fault.message);
        t.same(summary.healthy, new Array(10).fill('succeeded'), 'every healthy task succeeded');
        t.same(
          summary.letters.map((letter) => letter.reason),
          [fault.reason],
          'the bad task alone was dead-lettered, with a clear reason',
        );
        t.same(doneCounts(run.stdout, fault.task), new Array(10).fill(1), 'each healthy handler ran to its end exactly once');
      },
    );
  }
  t.equal(run.code, 0, `the worker process exited normally:\n${run.stderr.slice(0, 2000)}`);
}

/** Starts the worker process on a server-backed store, consuming `queues` (one worker each). */
export async function startFaultWorker(t: Test, env: NodeJS.ProcessEnv, queues: string[]): Promise<RunningStem> {
  const worker = startNode(['--import', 'tsx', FAULT_WORKER], { env: { ...env, FAULT_QUEUES: queues.join(',') } });
  t.teardown(() => worker.stop('SIGKILL'));
  await worker.waitForOutput(/^ready$/m, 120_000);
  return worker;
}

/** Enqueues one case: the bad task, then ten healthy ones, in `queue`. */
export async function enqueueCase(stem: Stem, queue: string, bad: string): Promise<{ badId: string; healthyIds: string[] }> {
  const badHandle = await stem.enqueue(bad, {}, { queue });
  const healthy = await stem.enqueueMany(Array.from({ length: 10 }, (_, n) => ({ task: 'fault.ok', args: { n }, options: { queue } })));
  return { badId: badHandle.id, healthyIds: healthy.map((handle) => handle.id) };
}

/** Waits until the eleven tasks of a case have ended and the dead letter is there. */
export async function waitForCase(stem: Stem, queue: string, ids: { badId: string; healthyIds: string[] }): Promise<void> {
  const all = [ids.badId, ...ids.healthyIds];
  await waitFor(
    async () =>
      (await Promise.all(all.map((id) => stem.status(id)))).every((status) => status.state === 'succeeded' || status.state === 'failed'),
    `the eleven tasks of ${queue} to end`,
    60_000,
  );
  await waitFor(async () => (await stem.broker.listDeadLetters(queue)).total >= 1, `the dead letter of ${queue}`);
}

/** What must hold once the bad task of `queue` and its ten neighbours have ended. */
export async function expectOutcome(
  t: Test,
  stem: Stem,
  output: string,
  queue: string,
  ids: { badId: string; healthyIds: string[] },
  fault: Fault,
): Promise<void> {
  const bad = await stem.status(ids.badId);
  t.equal(bad.state, 'failed', 'the bad task failed');
  t.equal(bad.error?.type, fault.type);
  t.match(bad.error?.message, fault.message);
  const states = await Promise.all(ids.healthyIds.map((id) => stem.status(id)));
  t.same(
    states.map((status) => status.state),
    new Array(10).fill('succeeded'),
    'every healthy task succeeded',
  );
  t.same(
    states.map((status) => status.result),
    ids.healthyIds.map((_, n) => ({ n })),
    'with its result',
  );
  const letters = (await stem.broker.listDeadLetters(queue)).entries;
  t.same(
    letters.map((letter) => [letter.id, letter.reason]),
    [[ids.badId, fault.reason]],
    'the bad task alone was dead-lettered, with a clear reason',
  );
  t.same(doneCounts(output, queue), new Array(10).fill(1), 'each healthy handler ran to its end exactly once');
}

/**
 * All the cases a store must pass: the attributable faults (and `late` ones) side by side in one
 * worker process that must stay alive; then the fatal fault, where the process dies once, a
 * supervisor starts another, and the tasks that shared the dead process do not count it as a
 * redelivery (maxRedeliveries 0 would dead-letter them otherwise).
 */
export async function storeScenarios(t: Test, stem: Stem, env: NodeJS.ProcessEnv, late: readonly Fault[]): Promise<void> {
  const faults = [...ATTRIBUTABLE_FAULTS, ...late];
  const queues = faults.map((fault) => `q-${fault.task}`);
  const cases = await Promise.all(faults.map((fault, i) => enqueueCase(stem, queues[i]!, fault.task)));
  const worker = await startFaultWorker(t, env, queues);
  for (const [i, fault] of faults.entries()) {
    await t.test(
      `${fault.task}: fails alone as ${fault.type} (${fault.reason}); the ten healthy tasks beside it succeed once each`,
      async (t) => {
        await waitForCase(stem, queues[i]!, cases[i]!);
        await expectOutcome(t, stem, worker.output(), queues[i]!, cases[i]!, fault);
      },
    );
  }
  t.equal(worker.child.exitCode, null, 'the worker process is still alive after every fault');

  await t.test(
    `${FATAL_FAULT.task}: an error no task can be blamed for kills the process once; the tasks beside it go back uncounted, the suspect then runs alone and fails`,
    async (t) => {
      const queue = 'q-fatal';
      const ids = await enqueueCase(stem, queue, FATAL_FAULT.task);
      const fatalEnv = { ...env, FAULT_MAX_REDELIVERIES: '0' };
      const first = await startFaultWorker(t, fatalEnv, [queue]);
      const code =
        first.child.exitCode ?? (await new Promise<number | null>((resolve) => first.child.once('exit', (exitCode) => resolve(exitCode))));
      t.equal(code, 1, 'the first worker process exited 1, as Node does on an uncaught exception');
      t.match(first.output(), /outside any task; the workers give their tasks back/);
      const second = await startFaultWorker(t, fatalEnv, [queue]);
      await waitForCase(stem, queue, ids);
      // The tasks running when the process died ran again (their results died with it): once more, not more.
      await expectOutcome(t, stem, second.output(), queue, ids, FATAL_FAULT);
      t.ok(
        doneCounts(first.output(), queue).every((count) => count <= 1),
        'no healthy task ran twice in the dead process',
      );
      t.equal(second.child.exitCode, null, 'the second worker process is alive');
    },
  );
}
