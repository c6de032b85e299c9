import t from 'tap';
import { defineTask } from '../../sdk/index.js';
import { canvasOf, task } from '../../plugins/canvas/index.js';
import { runStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { openCluster } from './canvas-harness.js';
import { requireRedis } from '../redis/redis-test-support.js';

// `stem result get <id>` through the real binary, from a process that created nothing.
if (await requireRedis(t)) {
  t.test('stem result get shows the members of a chord and of a group, in text and in --json', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const part = defineTask({
      name: 'cli.part',
      handler: async (args: { n: number }) => {
        if (args.n === 1) await gate;
        return args.n;
      },
    });
    const total = defineTask({
      name: 'cli.total',
      handler: async (args: { parent?: number[] }) => args.parent!.reduce((a, b) => a + b, 0),
    });
    const cluster = await openCluster(t, 'redis', [part, total]);
    await cluster.startWorker();
    const c = canvasOf(cluster.stem);
    const chordId = await c.chord({ body: [task(part, { n: 0 }), task(part, { n: 1 })], callback: task(total, {}) });
    const { groupId, taskIds } = await c.group([task(part, { n: 5 }), task(part, { n: 6 })]);
    await waitFor(
      async () => (await c.groupResult(chordId))?.completed === 1 && (await c.groupResult(groupId))?.done === true,
      'the first member and the group to finish',
    );
    const flags = ['--broker', cluster.redisUrl, '--backend', cluster.redisUrl];
    const bodyIds = (await c.groupResult(chordId))!.taskIds;

    const running = await runStem(['result', 'get', chordId, '--json', ...flags]);
    t.equal(running.code, 0, running.stderr);
    const half = JSON.parse(running.stdout) as {
      id: string;
      state: string;
      name: string;
      group: { expected: number; completed: number; done: boolean };
      members: Array<{ id: string; task: string; state: string }>;
    };
    t.equal(half.id, chordId);
    t.equal(half.state, 'pending', 'the chord waits for its body');
    t.equal(half.name, 'cli.total');
    t.same(half.group, { id: chordId, expected: 2, completed: 1, done: false });
    t.same(
      half.members.map((m) => m.id),
      bodyIds,
      'members in body order',
    );
    t.same(half.members[0], { id: bodyIds[0], task: 'cli.part', state: 'succeeded' });
    t.match(half.members[1], { id: bodyIds[1], task: 'cli.part', state: /queued|running/ });

    release();
    t.equal(await cluster.stem.handle(chordId).result({ timeoutMs: 60_000 }), 1);
    await waitFor(async () => (await c.groupResult(chordId))?.done === true, 'the body to finish');
    const text = await runStem(['result', 'get', chordId, ...flags]);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^state\s+succeeded$/m);
    t.match(text.stdout, /^group\s+2 of 2 members finished$/m);
    t.match(
      text.stdout,
      new RegExp(`^members\\n  0\\s+${bodyIds[0]}\\s+cli\\.part\\s+succeeded\\n  1\\s+${bodyIds[1]}\\s+cli\\.part\\s+succeeded$`, 'm'),
    );

    const plain = await runStem(['result', 'get', groupId, '--json', ...flags]);
    t.equal(plain.code, 0, plain.stderr);
    const group = JSON.parse(plain.stdout) as { state: string; members: Array<{ id: string; task: string; state: string }> };
    t.equal(group.state, 'pending', 'a plain group has no status record of its own');
    t.same(
      group.members,
      taskIds.map((id) => ({ id, task: 'cli.part', state: 'succeeded' })),
    );

    const task1 = await runStem(['result', 'get', taskIds[0]!, '--json', ...flags]);
    t.notOk('members' in (JSON.parse(task1.stdout) as object), 'a plain task shows no members');
    t.notMatch((await runStem(['result', 'get', taskIds[0]!, ...flags])).stdout, /members/);
  });
}
