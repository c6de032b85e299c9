import type { Test } from 'tap';
import {
  defineTask,
  EnvelopeNotRecordedError,
  Stem,
  type StemPlugin,
  TaskNotRetryableError,
  UnknownTaskIdError,
  uuidv7,
} from '../../sdk/index.js';
import { uniqueName, waitFor } from './wait.js';

/**
 * `stem.retry(id)` and `stem.listTasks()` against one composition (`plugins`, or the memory
 * default when empty): a failed task runs again under its id from its dead letter, a cancelled
 * one from the envelope its state recorded, and what cannot be retried is refused by name.
 */
export async function taskRetryCases(t: Test, plugins: () => StemPlugin[]): Promise<void> {
  const failOnce = new Set<string>();
  const runs = new Map<string, number>();
  const flaky = defineTask({
    name: 'retry.flaky',
    handler: async (args: { n: number; label: string }, ctx) => {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
      if (!failOnce.has(ctx.id)) {
        failOnce.add(ctx.id);
        throw new Error(`first run of ${args.label} fails`);
      }
      return args.n * 2;
    },
  });
  const queue = uniqueName('retry');
  const stem = await Stem.create({ plugins: plugins(), tasks: [flaky], defaultQueue: queue, extendedResults: false });
  t.teardown(() => stem.close());
  const worker = stem.worker({ queues: [queue], concurrency: 2 });
  await worker.start();

  await t.test('a failed task is listed with its args, and retried under its id from its dead letter', async (t) => {
    // Read on a queue no worker consumes: on the queue the worker reads, the task may already have run.
    const waiting = await stem.enqueue(flaky, { n: 21, label: 'waits' }, { queue: `${queue}-unread` });
    t.equal((await stem.backend.get(waiting.id))?.args, undefined, 'no args on queued without extendedResults');
    const handle = await stem.enqueue(flaky, { n: 21, label: '<img src=x onerror=alert(1)>' });
    await t.rejects(handle.result({ timeoutMs: 60_000 }), { name: 'TaskFailedError' });
    const failed = await stem.status(handle.id);
    t.same(failed.args, { n: 21, label: '<img src=x onerror=alert(1)>' }, 'the failed state records the args');
    t.equal(failed.envelope?.name, 'retry.flaky', 'and the envelope');
    t.equal(failed.envelope?.queue, queue);
    const listed = await stem.listTasks({ state: 'failed', queue });
    t.same(
      listed.tasks.map((task) => task.id),
      [handle.id],
      'listed under failed',
    );
    await waitFor(async () => (await stem.broker.listDeadLetters(queue)).entries.length === 1, 'the dead letter');
    const retried = await stem.retry<number>(handle.id);
    t.equal(retried.id, handle.id, 'same id');
    t.equal(await retried.result({ timeoutMs: 60_000 }), 42, 'ran again and succeeded');
    const status = await stem.status(handle.id);
    t.equal(status.generation, 1, 'a new generation');
    t.equal(status.attempt, 0, 'attempt 0');
    t.equal(runs.get(handle.id), 2, 'two runs in all');
    t.same((await stem.broker.listDeadLetters(queue)).entries, [], 'the dead letter was taken: a replay cannot run it again');
    await t.rejects(stem.retry(handle.id), TaskNotRetryableError, 'a succeeded task is not retried');
  });

  await t.test('a cancelled task is retried from the envelope its state recorded', async (t) => {
    const id = uuidv7();
    failOnce.add(id);
    const handle = await stem.enqueue(flaky, { n: 5, label: 'late' }, { id, expiresAt: new Date(Date.now() - 1_000) });
    await t.rejects(handle.result({ timeoutMs: 60_000 }), { name: 'TaskCancelledError' });
    t.equal(runs.get(handle.id), undefined, 'it never ran');
    const cancelled = await stem.status(handle.id);
    t.ok(cancelled.envelope?.expiresAt !== undefined, 'its envelope records the expiry that cancelled it');
    const retried = await stem.retry<number>(handle.id);
    t.equal(await retried.result({ timeoutMs: 60_000 }), 10, 'a retry runs now: the expiry is dropped');
    t.equal((await stem.status(handle.id)).generation, 1);
  });

  await t.test('what cannot be retried is refused with a typed error', async (t) => {
    await t.rejects(stem.retry(uuidv7()), UnknownTaskIdError, 'an unknown id');
    const id = uuidv7();
    await stem.backend.set([{ id, state: 'failed', name: 'retry.flaky', queue, attempt: 0, updatedAt: Date.now() }]);
    const error = await stem.retry(id).catch((e: unknown) => e);
    t.type(error, EnvelopeNotRecordedError, 'a failed state without an envelope nor a dead letter');
    t.match((error as Error).message, id);
    const running = uuidv7();
    await stem.backend.set([{ id: running, state: 'running', name: 'retry.flaky', queue, attempt: 0, updatedAt: Date.now() }]);
    await t.rejects(stem.retry(running), TaskNotRetryableError, 'a running task');
  });
}
