import type { TaskStatus } from '../../sdk/contracts/result-backend.js';
import { formatDuration } from '../../sdk/duration.js';
import type { Stem } from '../../sdk/kernel.js';
import type { TaskHandle } from '../../sdk/task-handle.js';
import { demoAdd, demoDelayed, demoFlaky, demoSlow, demoUrgent } from './demo-tasks.js';

/** One row of the demo's outcome table. */
export interface DemoRow {
  /** The order in which tasks first started (1 = first). */
  order: number;
  task: string;
  id: string;
  priority: number;
  attempts: number;
  state: string;
  result: string;
  /** From enqueue to the first start. */
  waitedMs: number;
  /** From the last start to the finish. */
  ranMs: number;
}

/** What the demo observed, and whether each behaviour it shows held. */
export interface DemoReport {
  rows: DemoRow[];
  checks: Array<{ name: string; ok: boolean }>;
  totalMs: number;
  queue: string;
}

const DELAY_MS = 1_000;

/**
 * The demo's queue. One fixed name, emptied before and after each run: a broker keeps the names of
 * the queues it saw (`stem queues list`) and the contract has no way to forget one, so a fresh
 * name per run would leave one more empty queue behind on Redis or Postgres every time.
 */
export const DEMO_QUEUE = 'stem-demo';

/**
 * Runs the demo on `stem` in one process: enqueues a mix of tasks on the demo queue before the
 * worker starts (so priorities show), runs one worker with concurrency 1, and reports per task.
 */
export async function runDemo(stem: Stem, options: { timeoutMs?: number } = {}): Promise<DemoReport> {
  const queue = DEMO_QUEUE;
  // What an interrupted run left would run first and spoil the order this run shows.
  await stem.broker.purge(queue);
  const firstStart = new Map<string, number>();
  const lastStart = new Map<string, number>();
  const attempts = new Map<string, number>();
  const startOrder: string[] = [];
  const offStarted = stem.signals.on('task-started', ({ envelope }) => {
    const now = Date.now();
    if (!firstStart.has(envelope.id)) {
      firstStart.set(envelope.id, now);
      startOrder.push(envelope.id);
    }
    lastStart.set(envelope.id, now);
    attempts.set(envelope.id, (attempts.get(envelope.id) ?? 0) + 1);
  });

  const began = Date.now();
  const handles: TaskHandle[] = [];
  const on = { queue };
  handles.push(await stem.enqueue(demoAdd, { a: 1, b: 2 }, on));
  handles.push(await stem.enqueue(demoAdd, { a: 20, b: 22 }, on));
  handles.push(await stem.enqueue(demoFlaky, { failTimes: 2 }, on));
  handles.push(await stem.enqueue(demoDelayed, { note: `ran at least ${DELAY_MS}ms after enqueue` }, { ...on, notBefore: DELAY_MS }));
  for (let i = 0; i < 3; i++) handles.push(await stem.enqueue(demoSlow, { ms: 120 }, { ...on, priority: 1 }));
  const urgent = await stem.enqueue(demoUrgent, { ticket: 'INC-42' }, { ...on, priority: 9 });
  handles.push(urgent);

  const worker = stem.worker({ queues: [queue], concurrency: 1 });
  await worker.start();
  const statuses: TaskStatus[] = [];
  try {
    for (const handle of handles) {
      await handle.result({ timeoutMs: options.timeoutMs ?? 30_000 }).catch(() => undefined);
      statuses.push(await handle.status());
    }
  } finally {
    offStarted();
    await worker.stop();
    await stem.broker.purge(queue).catch(() => 0);
    await stem.broker.purgeDeadLetters(queue).catch(() => 0);
  }
  const totalMs = Date.now() - began;

  const rows: DemoRow[] = handles.map((handle, i) => {
    const status = statuses[i]!;
    const started = firstStart.get(handle.id);
    const finished = status.updatedAt;
    return {
      order: startOrder.indexOf(handle.id) + 1,
      task: handle.name,
      id: handle.id,
      priority: handle.envelope?.priority ?? 0,
      attempts: attempts.get(handle.id) ?? 0,
      state: status.state,
      result: status.state === 'succeeded' ? JSON.stringify(status.result) : (status.error?.message ?? ''),
      waitedMs: started === undefined ? 0 : started - (handle.envelope?.createdAt ?? began),
      ranMs: started === undefined ? 0 : Math.max(0, finished - (lastStart.get(handle.id) ?? started)),
    };
  });
  rows.sort((a, b) => (a.order || Infinity) - (b.order || Infinity));

  const flaky = rows.find((row) => row.task === demoFlaky.name);
  const delayed = rows.find((row) => row.task === demoDelayed.name);
  const lowPriority = rows.filter((row) => row.priority === 1);
  const urgentRow = rows.find((row) => row.id === urgent.id);
  const checks = [
    { name: 'every task succeeded', ok: rows.every((row) => row.state === 'succeeded') },
    { name: 'the flaky task failed twice, then succeeded on attempt 3', ok: flaky?.attempts === 3 && flaky.state === 'succeeded' },
    { name: `the delayed task waited at least ${formatDuration(DELAY_MS)}`, ok: (delayed?.waitedMs ?? 0) >= DELAY_MS },
    {
      name: 'the priority-9 task, enqueued last, ran before every priority-1 task',
      ok: urgentRow !== undefined && lowPriority.every((row) => row.order > urgentRow.order),
    },
  ];
  return { rows, checks, totalMs, queue };
}
