// A workflow run outlives the worker processes that advance it: the order workflow on Redis with
// its worker SIGKILLed after the charge step (mid-sleep) and again while the run waits for its
// payment; each step's side effect, appended to a file by the step, happens once. Three worker
// processes and one `stem wf show`, one after another: CPU is scarce.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { workflowsOf } from '../../plugins/workflows/index.js';
import { Stem } from '../../sdk/index.js';
import { runStem, startStem, type RunningStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';

if (await requireRedis(t)) {
  const namespace = testNamespace('wf-kill');
  const dir = mkdtempSync(join(tmpdir(), 'stem-wf-'));
  const effectsFile = join(dir, 'effects.log');
  writeFileSync(effectsFile, '');
  const env = { WF_REDIS_URL: REDIS_URL, WF_NAMESPACE: namespace, WF_EFFECTS_FILE: effectsFile };
  Object.assign(process.env, env);
  const config = join(import.meta.dirname, 'fixtures', 'order.config.ts');
  const { default: stemConfig } = (await import('./fixtures/order.config.js')) as { default: Parameters<typeof Stem.create>[0] };
  // This process starts the run and emits the event; only the worker processes advance it.
  const stem = await Stem.create(stemConfig);
  const workers: RunningStem[] = [];
  t.teardown(async () => {
    for (const worker of workers) await worker.stop('SIGKILL');
    await stem.close();
    await deleteNamespace(namespace);
    rmSync(dir, { recursive: true, force: true });
  });
  const startWorker = async (): Promise<RunningStem> => {
    const worker = await startStem(['--config', config, 'worker', 'start', '--concurrency', '4'], { env });
    workers.push(worker);
    await worker.waitForOutput(/ready on/);
    return worker;
  };
  const effects = (runId: string, step: string) =>
    readFileSync(effectsFile, 'utf8')
      .split('\n')
      .filter((line) => line === `${runId} ${step}`).length;

  await t.test('the order run completes across three worker processes, two of them SIGKILLed; each step ran once', async (t) => {
    const ops = workflowsOf(stem);
    const orderId = `o-${namespace}`;
    const handle = await ops.start('orders.fulfil', { orderId, amount: 42 });

    const first = await startWorker();
    await waitFor(async () => (await ops.show(handle.id)).checkpoints.some((point) => point.name === 'charge'), 'the charge checkpoint');
    t.equal(await first.stop('SIGKILL'), 128, 'worker 1 killed after the charge step, while the run sleeps');

    const second = await startWorker();
    await waitFor(async () => (await ops.get(handle.id))?.status === 'waiting', 'the run to wake and wait for its payment', 120_000);
    t.equal(await second.stop('SIGKILL'), 128, 'worker 2 killed while the run waits');

    t.same(await ops.emit('payment', orderId, { paid: true }), [handle.id], 'the event is recorded with no worker alive');
    await startWorker();
    t.same(await handle.result({ timeoutMs: 120_000 }), {
      charge: { chargeId: `ch_${orderId}`, amount: 42 },
      paid: true,
      tracking: `tr_${orderId}`,
    });
    t.equal(effects(handle.id, 'charge'), 1, 'charged once');
    t.equal(effects(handle.id, 'ship'), 1, 'shipped once');

    const shown = await runStem(['--config', config, 'wf', 'show', handle.id], { env });
    t.equal(shown.code, 0, shown.stderr);
    t.match(shown.stdout, /status\s+succeeded/);
    t.match(shown.stdout, /charge/);
    t.match(shown.stdout, /payment/);
  });
}
