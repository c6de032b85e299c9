import t from 'tap';
import { Stem, defineTask } from '../../sdk/index.js';
import { sleep, waitFor } from '../helpers/wait.js';

t.test('the autoscaler raises concurrency under a backlog and lowers it when idle', async (t) => {
  let running = 0;
  let peak = 0;
  const work = defineTask({
    name: 'work',
    handler: async () => {
      running++;
      peak = Math.max(peak, running);
      // Each task stays until two ran at once (or a ceiling only a worker that never scales up reaches): with 40 ms
      // alone, a machine slower to start the next task than to finish one could see one at a time throughout.
      const deadline = Date.now() + 30_000;
      while (peak < 2 && Date.now() < deadline) await sleep(5);
      await sleep(40);
      running--;
    },
  });
  const stem = await Stem.create({ tasks: [work] });
  t.teardown(() => stem.close());
  const decisions: Array<{ from: number; to: number }> = [];
  stem.signals.on('worker-scaled', ({ from, to }) => decisions.push({ from, to }));
  const worker = stem.worker({ autoscale: { min: 1, max: 4, interval: 20, upCooldown: 20, idleAfter: 100 } });
  t.equal(worker.concurrency, 1, 'starts at min');
  const handles = await stem.enqueueMany(Array.from({ length: 60 }, () => ({ task: work, args: {} })));
  await worker.start();
  // Seen from the signals: a poll of worker.concurrency could miss a short spell at 4 (a stalled test process, the
  // backlog drained and the worker already back down).
  await waitFor(() => decisions.some(({ to }) => to === 4), 'concurrency to reach max');
  for (const handle of handles) await handle.result({ timeoutMs: 60_000 });
  t.ok(peak > 1, `more than one task ran at once once scaled up (peak ${peak})`);
  t.ok(peak <= 4, 'never more than max');
  await waitFor(() => worker.concurrency === 1, 'concurrency to fall back to min when idle');
  t.same(
    decisions.slice(0, 2),
    [
      { from: 1, to: 2 },
      { from: 2, to: 4 },
    ],
    'scaled up by doubling',
  );
  t.same(decisions.at(-1)?.to, 1);
  t.equal(worker.stats().autoscaleMax, 4, 'stats show the bounds');
});

t.test('bad autoscale bounds are refused', async (t) => {
  const stem = await Stem.create({});
  t.teardown(() => stem.close());
  t.throws(() => stem.worker({ autoscale: { min: 4, max: 2 } }), /1 <= min <= max/);
});
