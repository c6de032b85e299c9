// A child that dies hard (a segmentation fault, its V8 heap limit) fails only the attempt it ran,
// with an error that says why; the pool replaces it, the worker lives, and the next task runs.
import t, { type Test } from 'tap';
import { type IsolationOptions, isolation } from '../../plugins/isolation/index.js';
import { Stem, type TaskDefinition, TaskFailedError, type TaskHandle } from '../../sdk/index.js';
import * as isolated from './isolated-tasks.js';

const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);

/** The worker's own Node options, as a child inherits them by default (without an inspector). */
const inherited = process.execArgv.filter((arg) => !/^--(inspect|debug)/.test(arg));

async function setUp(t: Test, options: IsolationOptions) {
  const plugin = isolation(options);
  const stem = await Stem.create({ tasks, plugins: [plugin] });
  t.teardown(() => stem.close());
  const worker = stem.worker({ concurrency: 1 });
  await worker.start();
  return { stem, plugin, worker };
}

/** The error a failed task's backend stored. */
async function failure(t: Test, stem: Stem, handle: TaskHandle<unknown>) {
  await t.rejects(handle.result({ timeoutMs: 120_000 }), TaskFailedError);
  return (await stem.status(handle.id)).error!;
}

const cases = [
  {
    name: 'processes: a child that segfaults',
    options: { pool: 'processes' } as IsolationOptions,
    task: isolated.segfaults,
    reason: /was killed by SIGSEGV .*segmentation fault/,
  },
  {
    name: 'threads: a thread over its heap limit (threadHeapLimitMb)',
    options: { pool: 'threads', threadHeapLimitMb: 64 } as IsolationOptions,
    task: isolated.exhaustsHeap,
    reason: /exited with code \d+ .*ERR_WORKER_OUT_OF_MEMORY: .*out of memory/,
  },
  {
    name: 'processes: a process over its heap limit (--max-old-space-size)',
    options: { pool: 'processes', execArgv: [...inherited, '--max-old-space-size=64'] } as IsolationOptions,
    task: isolated.exhaustsHeap,
    reason: /was killed by SIGABRT .*out of memory: FATAL ERROR: .*heap out of memory/,
  },
];

for (const { name, options, task, reason } of cases) {
  t.test(`${name} fails only its attempt, saying why; the pool replaces it and the next task runs`, async (t) => {
    const { stem, plugin, worker } = await setUp(t, options);
    const mode = options.pool === 'threads' ? 'thread' : 'process';
    const before = await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 });
    const error = await failure(t, stem, await stem.enqueue(task as TaskDefinition, {}));
    t.equal(error.type, 'IsolatedChildExitedError');
    t.match(error.message, reason);
    t.equal(plugin.stats()[mode]?.crashed, 1);
    const after = await (await stem.enqueue(isolated.whoami, {})).result({ timeoutMs: 120_000 });
    t.match(after, new RegExp(`^${mode}:`), 'the next task ran in a child');
    t.not(after, before, 'a new one');
    t.equal(worker.state, 'running', 'the worker lives');
  });
}
