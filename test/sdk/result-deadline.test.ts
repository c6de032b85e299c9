import t from 'tap';
import { waitForTerminalStatus } from '../../sdk/task-handle.js';
import { MemoryResultBackend } from '../../sdk/memory/memory-result-backend.js';
import { ResultTimeoutError } from '../../sdk/errors.js';

/** Settles with 'hung' if `promise` has not settled within `ms`: a wait that never ends fails the test instead of stalling it. */
function orHung<T>(promise: Promise<T>, ms: number): Promise<T | 'hung'> {
  return Promise.race([promise, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms).unref())]);
}

/** A backend (without watchCurrent: watch, then get) whose watch never comes up (its subscriber connection reconnecting for ever); it counts unsubscribes. */
function stalledBackend(): { backend: MemoryResultBackend; release: () => void; unsubscribed: () => number } {
  const backend = new MemoryResultBackend();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let unsubscribes = 0;
  const watch = backend.watch.bind(backend);
  backend.watch = async (id, listener) => {
    await gate;
    const unsubscribe = await watch(id, listener);
    return async () => {
      unsubscribes++;
      await unsubscribe();
    };
  };
  return { backend, release, unsubscribed: () => unsubscribes };
}

t.test('result() ends at its timeout even when the backend never sets up the watch', async (t) => {
  const { backend, release, unsubscribed } = stalledBackend();
  const outcome = await orHung(
    waitForTerminalStatus(backend, 'task-1', { timeoutMs: 50 }).then(
      () => 'resolved',
      (error: unknown) => error,
    ),
    60_000,
  );
  t.type(outcome, ResultTimeoutError, 'a ResultTimeoutError, not a wait without end');
  t.match((outcome as Error).message, /task-1/, 'naming the task');
  release();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(unsubscribed(), 1, 'the watch that came up late is ended');
});

t.test('an aborted signal ends a wait whose watch never comes up', async (t) => {
  const { backend, release } = stalledBackend();
  const controller = new AbortController();
  const waiting = waitForTerminalStatus(backend, 'task-2', { timeoutMs: 600_000, signal: controller.signal }).then(
    () => 'resolved',
    (error: unknown) => error,
  );
  controller.abort();
  t.type(await orHung(waiting, 60_000), ResultTimeoutError, 'the wait ends');
  release();
});

t.test('a signal aborted before the call ends the wait too', async (t) => {
  const backend = new MemoryResultBackend();
  const controller = new AbortController();
  controller.abort();
  const outcome = await orHung(
    waitForTerminalStatus(backend, 'task-3', { timeoutMs: 600_000, signal: controller.signal }).then(
      () => 'resolved',
      (error: unknown) => error,
    ),
    60_000,
  );
  t.type(outcome, ResultTimeoutError, 'it does not wait the ten minutes');
});

t.test('a terminal state still ends the wait with that state', async (t) => {
  const backend = new MemoryResultBackend();
  const waiting = waitForTerminalStatus(backend, 'task-4', { timeoutMs: 60_000 });
  await backend.set([{ id: 'task-4', state: 'succeeded', attempt: 0, updatedAt: Date.now(), result: 42 }]);
  const status = await waiting;
  t.equal(status.state, 'succeeded');
  t.equal(status.result, 42);
});
