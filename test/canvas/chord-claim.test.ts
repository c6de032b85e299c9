// The chord barrier against a claim another worker holds: waiting out its lease, taking it over,
// or standing down once it is fired. The holder is played by the test through the backend.
import t, { type Test } from 'tap';
import { defineTask } from '../../sdk/index.js';
import { uuidv7 } from '../../sdk/id.js';
import { canvasOf, parentResult, task } from '../../plugins/canvas/index.js';
import { waitFor } from '../helpers/wait.js';
import { CallCounter, availableBackends, openCluster } from './canvas-harness.js';

/** Collects the process warnings emitted during the test. */
function recordWarnings(t: Test): string[] {
  const messages: string[] = [];
  const listener = (warning: Error): void => void messages.push(warning.message);
  process.on('warning', listener);
  t.teardown(() => void process.off('warning', listener));
  return messages;
}

for (const backend of await availableBackends(t)) {
  const setup = async (t: Test) => {
    const calls = new CallCounter();
    const member = defineTask({ name: 'claim.member', handler: async (args: { n: number }) => args.n * 10 });
    const callback = defineTask({
      name: 'claim.callback',
      handler: async (_args: object, ctx) => {
        calls.hit(ctx.id);
        return parentResult(ctx);
      },
    });
    const cluster = await openCluster(t, backend, [member, callback]);
    const chordId = uuidv7();
    const launch = () =>
      canvasOf(cluster.stem).chord({ body: [0, 1, 2].map((n) => task(member, { n })), callback: task(callback, {}, { id: chordId }) });
    const membersSucceeded = async () => {
      const body = await canvasOf(cluster.stem).groupResult(chordId);
      const states = await Promise.all((body?.taskIds ?? []).map(async (id) => (await cluster.stem.status(id)).state));
      return states.length === 3 && states.every((state) => state === 'succeeded');
    };
    return { cluster, calls, chordId, launch, membersSucceeded };
  };

  t.test(
    `${backend}: the member that closes a chord whose claim a dead worker holds waits out its lease, takes it over and fires the callback once`,
    async (t) => {
      const warnings = recordWarnings(t);
      const { cluster, calls, chordId, launch } = await setup(t);
      const held = await cluster.stem.backend.claimChord(chordId, { leaseMs: 1_000, claimer: 'dead-worker' });
      t.same(held, { won: true }, 'the "dead" worker holds the claim, unfired');
      await cluster.startWorker();
      await launch();
      t.same(await cluster.stem.handle(chordId).result({ timeoutMs: 60_000 }), [0, 10, 20], 'the callback ran with every result');
      t.equal(calls.of(chordId), 1, 'once');
      t.ok(
        warnings.some((message) => message.includes(`chord ${chordId}: took over the claim of dead-worker`)),
        'the worker says whose claim it took over',
      );
      // Marked right after the enqueue returns, which the callback itself may beat.
      const fired = async () => {
        const claim = await cluster.stem.backend.claimChord(chordId, { leaseMs: 60_000, claimer: 'test' });
        return !claim.won && claim.fired;
      };
      await waitFor(fired, 'the claim to be marked fired', 60_000);
      t.pass('the worker marked the claim fired');
    },
  );

  t.test(`${backend}: the member that closes a chord whose claim is already fired does not fire it again`, async (t) => {
    const { cluster, calls, chordId, launch, membersSucceeded } = await setup(t);
    t.same(await cluster.stem.backend.claimChord(chordId, { leaseMs: 60_000, claimer: 'firer' }), { won: true });
    await cluster.stem.backend.chordFired(chordId);
    await cluster.startWorker();
    await launch();
    // A member's state is written after its result phase, so the barrier has had its say by then.
    await waitFor(membersSucceeded, 'every member to succeed', 60_000);
    t.equal((await cluster.stem.status(chordId)).state, 'pending', 'no callback was enqueued');
    t.equal(calls.of(chordId), 0);
  });

  t.test(`${backend}: a member waiting on a live claim stands down as soon as the holder marks it fired`, async (t) => {
    const { cluster, calls, chordId, launch, membersSucceeded } = await setup(t);
    t.same(await cluster.stem.backend.claimChord(chordId, { leaseMs: 60_000, claimer: 'slow-firer' }), { won: true });
    await cluster.startWorker();
    await launch();
    const group = async () => (await canvasOf(cluster.stem).groupResult(chordId))?.completed;
    await waitFor(async () => (await group()) === 3, 'every member to reach the barrier', 60_000);
    t.notOk(await membersSucceeded(), 'the closing member waits on the live claim');
    await cluster.stem.backend.chordFired(chordId);
    await waitFor(membersSucceeded, 'the waiting member to finish', 60_000);
    t.equal((await cluster.stem.status(chordId)).state, 'pending', 'it did not fire the callback');
    t.equal(calls.of(chordId), 0);
  });
}
