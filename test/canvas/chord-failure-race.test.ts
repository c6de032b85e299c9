// A chord member's failure and its siblings' successes reach the barrier in any order when a worker
// runs members concurrently (or several workers do): the failed member's state can be recorded in
// the body's group while its own arrival has not claimed the chord yet, and a succeeding sibling's
// arrival then completes the group and wins the claim. Seen once under load (a chord with a failed
// member ran its callback and read as succeeded); here the interleaving is driven step by step.
import t from 'tap';
import { ChordBarrier } from '../../plugins/canvas/chord-barrier.js';
import type { ChordMembership } from '../../plugins/canvas/canvas-meta.js';
import { uuidv7 } from '../../sdk/id.js';
import { defineTask, Stem, type TaskStatus } from '../../sdk/index.js';

const callback = defineTask({ name: 'race.callback', handler: async () => 'ran' });

t.test('a member recorded as failed before a sibling completes the group fails the chord; the callback is never enqueued', async (t) => {
  const stem = await Stem.create({ tasks: [callback] });
  t.teardown(() => stem.close());
  const barrier = new ChordBarrier(stem, async () => undefined);
  const chordId = uuidv7();
  const memberIds = [uuidv7(), uuidv7(), uuidv7()];
  await stem.backend.initGroup(chordId, memberIds, { ttlMs: 60_000 });
  const membership = (index: number): ChordMembership => ({
    id: chordId,
    index,
    callback: { name: callback.name, args: {}, options: { id: chordId }, immutable: false },
    onError: 'fail',
  });
  const member = (index: number, state: 'succeeded' | 'failed'): TaskStatus => ({
    id: memberIds[index]!,
    name: 'race.member',
    state,
    attempt: 0,
    updatedAt: Date.now(),
    ...(state === 'succeeded' ? { result: index } : { error: { type: 'TypeError', message: 'week 29 has no data' } }),
  });
  const arrival = { workerId: 'worker-a', leaseMs: 30_000 };

  // Member 1's failure is in the group, but its arrival has not reached the claim yet.
  await barrier.recordGroupMember(chordId, member(1, 'failed'));
  await barrier.arrive(membership(0), member(0, 'succeeded'), arrival);
  await barrier.arrive(membership(2), member(2, 'succeeded'), arrival); // completes the group and claims
  // Member 1's own arrival comes last and finds the chord settled.
  await barrier.arrive(membership(1), member(1, 'failed'), arrival);

  const status = await stem.status(chordId);
  t.equal(status.state, 'failed', 'the chord failed, though a succeeding member closed the group');
  t.same(status.meta?.['stem.chord'], { failedMember: 1, failedTaskId: memberIds[1] }, 'naming the member that failed');
  t.match(status.error?.message, /member 2 of 3 \(race\.member, task [0-9a-f-]+\) failed: TypeError: week 29 has no data/);
  t.equal(await stem.broker.pending('default'), 0, 'no callback was enqueued');
});
