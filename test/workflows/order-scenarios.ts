// The workflow scenarios every store runs: the order workflow (charge, a 2 s durable sleep, a
// waited payment event, ship) and the operations around it. Each scenario makes its own Stem
// from `plugins()` (a unique namespace or schema per file) and counts each step's side effects.
import type { Test } from 'tap';
import {
  defineWorkflow,
  WorkflowEventTimeoutError,
  WorkflowRunFailedError,
  WorkflowStepFailedError,
  workflows,
  workflowsOf,
  type WorkflowDefinition,
} from '../../plugins/workflows/index.js';
import { defineTask, Stem, type StemPlugin } from '../../sdk/index.js';
import { retryOnStall, STALLED } from '../contract/support.js';
import { uniqueName, waitFor } from '../helpers/wait.js';

/** Side effects per run id and step. */
export class SideEffects {
  readonly counts = new Map<string, number>();
  add(runId: string, step: string): void {
    const key = `${runId}:${step}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  of(runId: string, step: string): number {
    return this.counts.get(`${runId}:${step}`) ?? 0;
  }
}

/** The order workflow of docs/workflows.md, with its steps counted in `effects`. */
export function orderWorkflow(effects: SideEffects, options: { name?: string; sleep?: string; paymentTimeout?: string } = {}) {
  return defineWorkflow({
    name: options.name ?? 'orders.fulfil',
    run: async (input: { orderId: string; amount: number }, wf) => {
      const charge = await wf.step('charge', () => {
        effects.add(wf.runId, 'charge');
        return { chargeId: `ch_${input.orderId}`, amount: input.amount };
      });
      await wf.sleep(options.sleep ?? '2s');
      const payment = await wf.waitForEvent<{ paid: boolean }>('payment', { key: input.orderId, timeout: options.paymentTimeout });
      const shipment = await wf.step('ship', () => {
        effects.add(wf.runId, 'ship');
        return { tracking: `tr_${input.orderId}` };
      });
      return { charge, paid: payment.paid, tracking: shipment.tracking };
    },
  });
}

/** How a scenario gets a Stem on the store under test. */
export interface ScenarioTarget {
  /** The store's plugins (broker, backend, workflow store), a fresh instance each call. */
  plugins(): StemPlugin[];
}

async function makeStem(target: ScenarioTarget, definitions: WorkflowDefinition[], extra: StemPlugin[] = []): Promise<Stem> {
  return Stem.create({ plugins: [...target.plugins(), workflows({ definitions, lease: '2s' }), ...extra] });
}

/** Runs the order scenarios against `target`. */
export async function orderScenarios(t: Test, target: ScenarioTarget): Promise<void> {
  await t.test('the order workflow completes: charge, durable sleep, payment event, ship, each step once', async (t) => {
    const effects = new SideEffects();
    const order = orderWorkflow(effects);
    const stem = await makeStem(target, [order]);
    t.teardown(() => stem.close());
    const worker = stem.worker({ concurrency: 4 });
    await worker.start();
    const orderId = uniqueName('order');
    const ops = workflowsOf(stem);
    const handle = await ops.start(order, { orderId, amount: 42 });
    // 'sleeping' lasts 2 s: a poll stalled that long would miss it, so 'waiting' (after the sleep) counts too.
    await waitFor(async () => ['sleeping', 'waiting'].includes((await ops.get(handle.id))?.status ?? ''), 'the run to sleep');
    t.equal(effects.of(handle.id, 'charge'), 1, 'charged before the sleep');
    await waitFor(async () => (await ops.get(handle.id))?.status === 'waiting', 'the run to wait for the payment');
    t.same(await ops.emit('payment', orderId, { paid: true }), [handle.id], 'the event reached the run');
    t.same(await handle.result({ timeoutMs: 60_000 }), {
      charge: { chargeId: `ch_${orderId}`, amount: 42 },
      paid: true,
      tracking: `tr_${orderId}`,
    });
    t.equal(effects.of(handle.id, 'charge'), 1, 'charge ran once');
    t.equal(effects.of(handle.id, 'ship'), 1, 'ship ran once');
    const { checkpoints } = await ops.show(handle.id);
    t.same(
      checkpoints.map((point) => [point.position, point.kind, point.name]),
      [
        [0, 'step', 'charge'],
        [1, 'sleep', 'sleep'],
        [2, 'event', 'payment'],
        [3, 'step', 'ship'],
      ],
    );
  });

  await t.test('an event emitted before the run waits for it is buffered and delivered', async (t) => {
    const effects = new SideEffects();
    const order = orderWorkflow(effects, { sleep: '1ms' });
    const stem = await makeStem(target, [order]);
    t.teardown(() => stem.close());
    const orderId = uniqueName('order');
    const ops = workflowsOf(stem);
    t.same(await ops.emit('payment', orderId, { paid: true }), [], 'nobody waits yet');
    const handle = await ops.start(order, { orderId, amount: 1 });
    await stem.worker({ concurrency: 2 }).start();
    t.equal((await handle.result({ timeoutMs: 60_000 })).paid, true);
  });

  await t.test('waitForEvent with a timeout throws WorkflowEventTimeoutError into the run once it passes', async (t) => {
    const flow = defineWorkflow({
      name: 'orders.remind',
      run: async (input: { orderId: string }, wf) => {
        try {
          await wf.waitForEvent('payment', { key: input.orderId, timeout: '300ms' });
          return 'paid';
        } catch (error) {
          if (error instanceof WorkflowEventTimeoutError) return 'reminded';
          throw error;
        }
      },
    });
    const stem = await makeStem(target, [flow]);
    t.teardown(() => stem.close());
    await stem.worker({ concurrency: 2 }).start();
    const handle = await workflowsOf(stem).start(flow, { orderId: uniqueName('order') });
    t.equal(await handle.result({ timeoutMs: 60_000 }), 'reminded');
    const { checkpoints } = await workflowsOf(stem).show(handle.id);
    t.equal(checkpoints[0]?.timedOut, true, 'the timeout is checkpointed');
  });

  await t.test('a run cancelled mid-sleep never wakes: its later steps do not run', async (t) => {
    // The cancel must come while the run sleeps (1.5 s): when a stall of the machine let the sleep end first (the run was
    // seen waiting for its payment), the case runs again with a 4x sleep (retryOnStall).
    await retryOnStall(t, 1_500, async (sleepMs, lastTry) => {
      const effects = new SideEffects();
      const order = orderWorkflow(effects, { name: uniqueName('orders.cancelled'), sleep: `${sleepMs}ms` });
      const stem = await makeStem(target, [order]);
      t.teardown(() => stem.close());
      await stem.worker({ concurrency: 2 }).start();
      const ops = workflowsOf(stem);
      const handle = await ops.start(order, { orderId: uniqueName('order'), amount: 1 });
      let status = '';
      await waitFor(async () => ['sleeping', 'waiting'].includes((status = (await ops.get(handle.id))?.status ?? '')), 'the run to sleep');
      await ops.cancel(handle.id, 'customer cancelled');
      if (status !== 'sleeping' && !lastTry) return STALLED;
      await t.rejects(handle.result({ timeoutMs: 60_000 }), WorkflowRunFailedError);
      // The wake-up task still fires; it must find the run cancelled and do nothing.
      const wakeId = `${handle.id}.0.1.wake`;
      await waitFor(async () => (await stem.status(wakeId)).state === 'succeeded', 'the wake-up task to run');
      const run = await ops.get(handle.id);
      t.equal(run?.status, 'cancelled');
      t.equal(run?.error?.message, 'customer cancelled');
      t.equal(effects.of(handle.id, 'ship'), 0, 'ship never ran');
    });
  });

  await t.test('a replay whose steps no longer match the checkpoints fails with WorkflowVersionMismatchError', async (t) => {
    const name = uniqueName('orders.changed');
    const v1 = defineWorkflow({
      name,
      run: async (_: object, wf) => {
        await wf.step('reserve', () => 1);
        await wf.waitForEvent('go', { key: wf.runId });
        return 'v1';
      },
    });
    // The same name and version with different code: what a deploy without a version bump does.
    const changed = defineWorkflow({
      name,
      run: async (_: object, wf) => {
        await wf.step('charge', () => 1);
        await wf.waitForEvent('go', { key: wf.runId });
        return 'changed';
      },
    });
    const first = await makeStem(target, [v1]);
    const handle = await workflowsOf(first).start(v1, {});
    const worker = first.worker({ concurrency: 1 });
    await worker.start();
    await waitFor(async () => (await workflowsOf(first).get(handle.id))?.status === 'waiting', 'the run to wait');
    await first.close();
    const second = await makeStem(target, [changed]);
    t.teardown(() => second.close());
    await second.worker({ concurrency: 1 }).start();
    await workflowsOf(second).emit('go', handle.id);
    const error = await workflowsOf(second)
      .handle(handle.id)
      .result({ timeoutMs: 60_000 })
      .catch((caught: unknown) => caught);
    t.type(error, WorkflowRunFailedError);
    const run = await workflowsOf(second).get(handle.id);
    t.equal(run?.error?.code, 'workflow-version-mismatch');
    t.match(run?.error?.message, /durable call 0 is step "charge" but the run recorded step "reserve"/);
  });

  await t.test('rewind re-runs a run from a named step', async (t) => {
    const effects = new SideEffects();
    const flow = defineWorkflow({
      name: 'orders.invoice',
      run: async (_: object, wf) => {
        const a = await wf.step('draft', () => (effects.add(wf.runId, 'draft'), 'draft'));
        const b = await wf.step('send', () => (effects.add(wf.runId, 'send'), effects.of(wf.runId, 'send')));
        return `${a}:${b}`;
      },
    });
    const stem = await makeStem(target, [flow]);
    t.teardown(() => stem.close());
    await stem.worker({ concurrency: 2 }).start();
    const ops = workflowsOf(stem);
    const handle = await ops.start(flow, {});
    t.equal(await handle.result({ timeoutMs: 60_000 }), 'draft:1');
    await ops.rewind(handle.id, 'send');
    await waitFor(async () => effects.of(handle.id, 'send') === 2, 'send to run again');
    t.equal(await handle.result({ timeoutMs: 60_000 }), 'draft:2', 'the rewound step ran again, the one before did not');
    t.equal(effects.of(handle.id, 'draft'), 1);
    t.equal((await ops.get(handle.id))?.rewinds, 1);
  });

  await t.test('a run whose advancing worker died holding its lease is replayed by another once the lease ends', async (t) => {
    const effects = new SideEffects();
    const flow = defineWorkflow({
      name: 'orders.takeover',
      run: async (_: object, wf) => {
        const charge = await wf.step('charge', () => (effects.add(wf.runId, 'charge'), 'charged here'));
        const ship = await wf.step('ship', () => (effects.add(wf.runId, 'ship'), 'shipped'));
        return `${charge}/${ship}`;
      },
    });
    const stem = await makeStem(target, [flow]);
    t.teardown(() => stem.close());
    const ops = workflowsOf(stem);
    const handle = await ops.start(flow, {});
    // A worker that claimed the run, checkpointed its first step and died: its lease runs out in 1.5 s.
    const store = stem.service('workflowStore');
    // Both at the claim's time: the checkpoint was written under the live lease, however long this process stalls between.
    const claimedAt = Date.now();
    t.equal((await store.claim(handle.id, 'dead-worker', 1_500, claimedAt)).claimed, true);
    await store.saveCheckpoint(
      handle.id,
      { position: 0, name: 'charge', kind: 'step', value: 'charged before dying', finishedAt: claimedAt },
      'dead-worker',
      claimedAt,
    );
    await stem.worker({ concurrency: 2 }).start();
    t.equal(await handle.result({ timeoutMs: 60_000 }), 'charged before dying/shipped', 'the checkpoint of the dead worker is kept');
    t.equal(effects.of(handle.id, 'charge'), 0, 'the checkpointed step did not run again');
    t.equal(effects.of(handle.id, 'ship'), 1);
    t.equal(await store.renew(handle.id, 'dead-worker', 1_500, Date.now()), false, 'the dead worker lost its lease');
  });

  await t.test('a child workflow is awaited as a step: its result, or its failure, reaches the parent once', async (t) => {
    const effects = new SideEffects();
    const pack = defineWorkflow({
      name: 'orders.pack',
      run: async (input: { items: number; fail?: boolean }, wf) => {
        await wf.sleep('1ms');
        return wf.step('box', () => {
          effects.add(wf.runId, 'box');
          if (input.fail) throw new Error('no boxes left');
          return `${input.items} items boxed`;
        });
      },
    });
    const parent = defineWorkflow({
      name: 'orders.parent',
      run: async (input: { fail: boolean }, wf) => {
        try {
          return await wf.child(pack, { items: 3, fail: input.fail });
        } catch (error) {
          if (error instanceof WorkflowStepFailedError) return `packing failed: ${error.failure.message}`;
          throw error;
        }
      },
    });
    const stem = await makeStem(target, [parent, pack]);
    t.teardown(() => stem.close());
    await stem.worker({ concurrency: 4 }).start();
    const ops = workflowsOf(stem);
    const ok = await ops.start(parent, { fail: false });
    t.equal(await ok.result({ timeoutMs: 60_000 }), '3 items boxed');
    const childId = `${ok.id}.0.0.child`;
    t.equal((await ops.get(childId))?.status, 'succeeded', 'the child is a run of its own');
    t.equal(effects.of(childId, 'box'), 1);
    const failing = await ops.start(parent, { fail: true });
    t.match(await failing.result({ timeoutMs: 60_000 }), /^packing failed: .*no boxes left/);
  });

  await t.test('steps retry per their policy; child tasks are awaited as steps; now/random/uuid replay the same', async (t) => {
    let failures = 0;
    const double = defineTask({ name: uniqueName('math.double'), handler: async (args: { n: number }) => args.n * 2 });
    const seen: unknown[][] = [];
    const flow = defineWorkflow({
      name: 'orders.mixed',
      run: async (_: object, wf) => {
        const values = [wf.now().getTime(), wf.random(), wf.uuid()];
        seen.push(values);
        const flaky = await wf.step(
          'flaky',
          (step) => {
            if (failures++ < 2) throw new Error('upstream busy');
            return step.attempt;
          },
          { retry: { maxRetries: 3, delayMs: 10 } },
        );
        const doubled = await wf.task(double, { n: 21 });
        return { flaky, doubled, values };
      },
    });
    const stem = await makeStem(target, [flow]);
    t.teardown(() => stem.close());
    stem.registry.register(double);
    await stem.worker({ concurrency: 2 }).start();
    const handle = await workflowsOf(stem).start(flow, {});
    const result = await handle.result({ timeoutMs: 60_000 });
    t.equal(result.flaky, 2, 'succeeded on the third attempt');
    t.equal(result.doubled, 42, 'the child task result');
    t.ok(seen.length >= 3, 'the run function replayed after each retry');
    for (const values of seen) t.same(values, seen[0], 'now, random and uuid are the same on every replay');
    t.match(String(result.values[2]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
}
