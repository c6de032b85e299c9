import type { Test } from 'tap';
import { defineTask, type Stem, type StemPlugin, type TaskDefinition } from 'stem';
import { rateLimit } from '../../plugins/rate-limit/index.js';
import { uniqueName } from './wait.js';

/** How one broker under test is set up, with its idle wait made far longer than any result wait here. */
export interface WakeOnTimeSetup {
  /** A Stem on the broker under test (idle consumers wait a minute unless woken), with `extra` plugins. */
  stem(tasks: TaskDefinition[], extra?: StemPlugin[]): Promise<Stem>;
  /** Resolves once the worker's consumer is waiting for work (blocked), when the broker can tell. */
  idle(stem: Stem): Promise<void>;
}

/**
 * Far shorter than the idle wait the setup configures (a minute): a task that runs only when that
 * wait ends makes the result wait time out, so each case fails without a wake-up on time.
 */
const RESULT_WAIT_MS = 40_000;

/**
 * Delayed work on an idle worker starts when it falls due, not when the consumer's long idle wait
 * ends: a `notBefore` task, a retry backoff and rate-limit deferrals. The lateness of each start
 * is reported (not asserted: the bench measures it).
 */
export function wakeOnTimeCases(t: Test, setup: WakeOnTimeSetup): void {
  t.test('a delayed task enqueued while the worker is idle runs once due', async (t) => {
    const queue = uniqueName('delayed');
    const started: number[] = [];
    const warm = defineTask({ name: 'wake.warm', handler: async () => 'warm' });
    const stamp = defineTask({
      name: 'wake.stamp',
      handler: async () => {
        started.push(Date.now());
      },
    });
    const stem = await setup.stem([warm, stamp]);
    await stem.worker({ queues: [queue], concurrency: 2 }).start();
    // a first task makes sure the worker has fetched, found nothing more and is waiting again
    t.equal(await (await stem.enqueue(warm, {}, { queue })).result({ timeoutMs: RESULT_WAIT_MS }), 'warm');
    await setup.idle(stem);
    const dueAt = Date.now() + 400;
    const handle = await stem.enqueue(stamp, {}, { queue, notBefore: new Date(dueAt) });
    await handle.result({ timeoutMs: RESULT_WAIT_MS });
    t.ok(started[0]! >= dueAt, 'not before its time');
    t.comment(`started ${started[0]! - dueAt} ms after due`);
  });

  t.test('a retry with backoff runs once its backoff ends, though the worker blocked while the task ran', async (t) => {
    const queue = uniqueName('retry');
    const attempts: number[] = [];
    const flaky = defineTask({
      name: 'wake.flaky',
      options: { maxRetries: 2, retryPolicy: { backoff: 'fixed', delayMs: 300, jitter: false } },
      handler: async () => {
        attempts.push(Date.now());
        if (attempts.length === 1) throw new Error('the first attempt fails');
        return 'second';
      },
    });
    const stem = await setup.stem([flaky]);
    // concurrency > 1: the worker fetches (and blocks) for more while the first attempt runs
    await stem.worker({ queues: [queue], concurrency: 4 }).start();
    await setup.idle(stem);
    const handle = await stem.enqueue(flaky, {}, { queue });
    t.equal(await handle.result({ timeoutMs: RESULT_WAIT_MS }), 'second');
    t.equal(attempts.length, 2);
    t.comment(`second attempt ${attempts[1]! - attempts[0]! - 300} ms after its backoff (from the first start)`);
  });

  t.test('tasks deferred by a rate limit run as their tokens come, on an otherwise idle worker', async (t) => {
    const queue = uniqueName('rated');
    const starts: number[] = [];
    const tick = defineTask({
      name: uniqueName('wake.tick'),
      options: { rateLimit: '4/s' },
      handler: async () => {
        starts.push(Date.now());
      },
    });
    const stem = await setup.stem([tick], [rateLimit()]);
    await stem.worker({ queues: [queue], concurrency: 4 }).start();
    await setup.idle(stem);
    const handles = await stem.enqueueMany(Array.from({ length: 4 }, () => ({ task: tick, args: {}, options: { queue } })));
    await Promise.all(handles.map((handle) => handle.result({ timeoutMs: RESULT_WAIT_MS })));
    t.equal(starts.length, 4, 'every deferred task ran');
    t.comment(`starts ${starts.map((at) => at - starts[0]!).join(', ')} ms after the first (one token per 250 ms)`);
  });
}
