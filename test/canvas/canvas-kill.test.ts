import t from 'tap';
import { Stem } from '../../sdk/index.js';
import { canvas, canvasOf, task } from '../../plugins/canvas/index.js';
import { redis } from '../../plugins/redis/index.js';
import { waitFor } from '../helpers/wait.js';
import { startNode, type RunningStem } from '../helpers/run-stem.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';

const script = 'test/canvas/fixtures/kill-worker.ts';

// Done when: a worker killed (process exit) while running a member; the member is redelivered and the chord completes once.
if (await requireRedis(t)) {
  t.test(
    'a worker killed mid-member: the member is redelivered to another worker and the callback runs once with every result',
    async (t) => {
      const namespace = testNamespace('canvas-kill');
      const url = `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}namespace=${namespace}`;
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace, blockMs: 100 }), canvas()] });
      const workers: RunningStem[] = [];
      t.teardown(async () => {
        await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
        await stem.close();
        await deleteNamespace(namespace);
      });
      const doomed = startNode(['--import', 'tsx', script], { env: { STEM_TEST_URL: url, HANG_MEMBER: '2' } });
      workers.push(doomed);
      await doomed.waitForOutput(/worker ready/);
      const c = canvasOf(stem);
      // The member's short lease (1s) is what lets another worker take it over soon after the kill.
      const chordId = await c.chord({
        body: [0, 1, 2, 3].map((n) => task('kill.member', { n }, { visibilityTimeout: '1s' })),
        callback: task('kill.callback', {}),
      });
      await doomed.waitForOutput(/member 2 started/);
      // Wait for the others to write their own state (batched with their ack), so the kill lands with member 2 the only one held.
      const { taskIds } = (await c.groupResult(chordId))!;
      const others = taskIds.filter((_, i) => i !== 2);
      await waitFor(
        async () => (await Promise.all(others.map((id) => stem.status(id)))).every((status) => status.state === 'succeeded'),
        'members 0, 1 and 3 to succeed',
        60_000,
      );
      // The group's count follows the members' states: waited for, not given a fixed 300 ms.
      await waitFor(async () => (await c.groupResult(chordId))!.completed === 3, 'the group to count three members');
      t.equal((await c.groupResult(chordId))!.completed, 3, 'three members finished before the kill');
      t.equal(await doomed.stop('SIGKILL'), 128, 'the worker was killed (SIGKILL)');
      t.equal((await stem.status(chordId)).state, 'pending', 'the chord still waits for member 2');

      const rescuer = startNode(['--import', 'tsx', script], { env: { STEM_TEST_URL: url } });
      workers.push(rescuer);
      t.same(await stem.handle(chordId).result({ timeoutMs: 30_000 }), [0, 10, 20, 30], 'the callback got every result in order');
      await rescuer.waitForOutput(/callback ran/);
      // Give a stray second firing time to show up before counting.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const output = doomed.output() + rescuer.output();
      t.equal(output.match(/callback ran/g)?.length, 1, 'the callback ran exactly once');
      t.match(rescuer.output(), /member 2 started/, 'member 2 was redelivered to the second worker');
      t.notMatch(rescuer.output(), /member [013] started/, 'the finished members did not run again');
      t.match(rescuer.output(), new RegExp(`callback ran ${chordId} with \\[0,10,20,30\\]`));
      const body = (await c.groupResult(chordId))!;
      t.same(body.states, ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      t.equal(body.completed, 4, 'member 2 counted once');
    },
  );
}
