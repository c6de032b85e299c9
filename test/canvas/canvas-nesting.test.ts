import t from 'tap';
import { TaskFailedError, Unrecoverable, defineTask } from '../../sdk/index.js';
import { canvasOf, chain, chord, task } from '../../plugins/canvas/index.js';
import { waitFor } from '../helpers/wait.js';
import { CallCounter, availableBackends, openCluster } from './canvas-harness.js';

const RESULT_TIMEOUT = { timeoutMs: 60_000 };

const start = defineTask({ name: 'nest.start', handler: async (args: { x: number }) => args.x });
const add = defineTask({ name: 'nest.add', handler: async (args: { n: number; parent?: number }) => (args.parent ?? 0) + args.n });
const double = defineTask({ name: 'nest.double', handler: async (args: { parent?: number }) => args.parent! * 2 });
const label = defineTask({ name: 'nest.label', handler: async (args: { parent?: unknown }) => `total ${JSON.stringify(args.parent)}` });

for (const backend of await availableBackends(t)) {
  t.test(
    `${backend}: a chord as a chain step gets the parent result in each member, and its callback's result feeds the next step`,
    async (t) => {
      const calls = new CallCounter();
      const sum = defineTask({
        name: 'nest.sum',
        handler: async (args: { parent?: number[] }, ctx) => {
          calls.hit(ctx.id);
          return args.parent!.reduce((a, b) => a + b, 0);
        },
      });
      const cluster = await openCluster(t, backend, [start, add, sum, label]);
      await cluster.startWorker();
      const c = canvasOf(cluster.stem);
      const chainId = await c.chain([
        task(start, { x: 1 }),
        chord({ body: [task(add, { n: 10 }), task(add, { n: 20 })], callback: task(sum, {}) }),
        task(label, {}),
      ]);
      t.equal(await cluster.stem.handle(chainId).result(RESULT_TIMEOUT), 'total 32', '(1 + 10) + (1 + 20), then labelled');
      const steps = ((await cluster.stem.status(chainId)).meta!['stem.chain'] as { steps: Array<{ id: string; name: string }> }).steps;
      t.same(
        steps.map((s) => s.name),
        ['nest.start', 'nest.sum', 'nest.label'],
        'the chord step is listed by its callback',
      );
      const body = (await c.groupResult(steps[1]!.id))!;
      t.same(body.results, [11, 21], 'the chord step id is its body group id');
      t.equal(calls.of(steps[1]!.id), 1, 'the callback ran once, under the chord id');
    },
  );

  t.test(`${backend}: a failed member of a chord step fails the chain, naming the chord, and later steps do not run`, async (t) => {
    let later = 0;
    const boom = defineTask({
      name: 'nest.boom',
      handler: async () => {
        throw new Unrecoverable('no stock');
      },
    });
    const never = defineTask({ name: 'nest.never', handler: async () => void later++ });
    const cluster = await openCluster(t, backend, [start, add, boom, never]);
    await cluster.startWorker();
    const chainId = await canvasOf(cluster.stem).chain([
      task(start, { x: 1 }),
      chord({ body: [task(add, { n: 1 }), task(boom, {})], callback: task(never, {}) }),
      task(never, {}),
    ]);
    const error = await cluster.stem
      .handle(chainId)
      .result(RESULT_TIMEOUT)
      .catch((e: unknown) => e);
    t.type(error, TaskFailedError);
    t.match(
      (error as Error).message,
      /step 2 of 3 \(nest\.never, task [0-9a-f-]+\) failed: ChordMemberFailedError: chord [0-9a-f-]+: member 2 of 2 \(nest\.boom, task [0-9a-f-]+\) failed: Unrecoverable: no stock/,
    );
    t.equal((await cluster.stem.status(chainId)).state, 'failed');
    t.equal(later, 0, 'neither the callback nor the step after the chord ran');
  });

  t.test(`${backend}: a group of chains runs each chain and completes, results in order, when every chain's last step has`, async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = defineTask({
      name: 'nest.slow',
      handler: async (args: { parent?: number }) => {
        await gate;
        return args.parent! + 1;
      },
    });
    const cluster = await openCluster(t, backend, [start, double, slow]);
    await cluster.startWorker();
    const c = canvasOf(cluster.stem);
    const { groupId, taskIds } = await c.group([
      chain([task(start, { x: 1 }), task(double, {}), task(slow, {})]),
      chain([task(start, { x: 10 }), task(double, {})], { id: `chain-b-${backend}` }),
    ]);
    t.equal(taskIds[1], `chain-b-${backend}`, 'a member that is a chain is known by its chain id');
    await waitFor(async () => (await c.groupResult(groupId))?.completed === 1, 'the short chain to finish');
    const partial = (await c.groupResult(groupId))!;
    t.equal(partial.done, false, 'the group waits for the last step of the long chain');
    t.same(partial.results, [undefined, 20]);
    t.equal(partial.states[0], 'running', "a chain member's live state is its chain record's");
    release();
    await waitFor(async () => (await c.groupResult(groupId))?.done === true, 'the group to finish', 60_000);
    const group = (await c.groupResult(groupId))!;
    t.same(group.results, [3, 20], 'each chain ends with its last result, in member order');
    t.same(group.names, ['stem.chain', 'stem.chain']);
    t.equal(await cluster.stem.handle(taskIds[0]!).result(RESULT_TIMEOUT), 3, 'each chain is its own record too');
  });

  t.test(`${backend}: a chord whose body members are chains gets each chain's last result`, async (t) => {
    const total = defineTask({ name: 'nest.total', handler: async (args: { parent?: number[] }) => args.parent });
    const cluster = await openCluster(t, backend, [start, double, total]);
    await cluster.startWorker();
    const chordId = await canvasOf(cluster.stem).chord({
      body: [chain([task(start, { x: 2 }), task(double, {})]), task(start, { x: 7 })],
      callback: task(total, {}),
    });
    t.same(await cluster.stem.handle(chordId).result(RESULT_TIMEOUT), [4, 7]);
  });
}
