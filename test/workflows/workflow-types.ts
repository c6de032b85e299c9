// Type checks of the workflow API (checked by `npm run typecheck`, which includes test/): inputs
// and results flow from defineWorkflow to start and result(), step results are typed, and each
// line marked as an expected error must be one.
import { defineWorkflow, type WorkflowRunHandle, workflowsOf } from '../../plugins/workflows/index.js';
import { defineTask, type Stem } from '../../sdk/index.js';

declare const stem: Stem;

const add = defineTask({ name: 'types.add', handler: async (args: { a: number; b: number }) => args.a + args.b });

export const typed = defineWorkflow({
  name: 'types.order',
  run: async (input: { orderId: string; amount: number }, wf) => {
    const charge = await wf.step('charge', async () => ({ chargeId: `ch_${input.orderId}` }));
    const id: string = charge.chargeId;
    // @ts-expect-error a step's result keeps its type
    const wrong: number = charge.chargeId;
    const sum: number = await wf.task(add, { a: 1, b: 2 });
    // @ts-expect-error a child task's arguments are its definition's
    await wf.task(add, { a: 1 });
    const payment = await wf.waitForEvent<{ paid: boolean }>('payment', { key: input.orderId });
    // @ts-expect-error waitForEvent needs a key
    await wf.waitForEvent('payment', {});
    return { id, sum, paid: payment.paid, wrong };
  },
});

export async function starts(): Promise<void> {
  const handle: WorkflowRunHandle<{ id: string; sum: number; paid: boolean; wrong: number }> = await workflowsOf(stem).start(typed, {
    orderId: 'o-1',
    amount: 42,
  });
  const result = await handle.result();
  const paid: boolean = result.paid;
  // @ts-expect-error the input is the run function's
  await workflowsOf(stem).start(typed, { orderId: 'o-1' });
  // @ts-expect-error the result is the run function's
  const missing: string = result.tracking;
  void paid;
  void missing;
}
