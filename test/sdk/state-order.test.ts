import t from 'tap';
import { Stem, defineTask, supersedes, type TaskStatus } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';

const at = (state: TaskStatus['state'], attempt = 0, generation?: number): TaskStatus => ({
  id: 'x',
  state,
  attempt,
  generation,
  updatedAt: 0,
});

t.test('supersedes orders states by generation, then attempt, then phase; a final state stands', async (t) => {
  t.ok(supersedes(at('queued'), null), 'anything over nothing');
  t.notOk(supersedes(at('queued'), at('succeeded')), 'queued never replaces the outcome of its attempt');
  t.notOk(supersedes(at('queued'), at('running')));
  t.ok(supersedes(at('running'), at('running')), 'progress updates replace each other');
  t.notOk(supersedes(at('failed'), at('succeeded')), 'the first outcome of an attempt stands');
  t.ok(supersedes(at('running', 1), at('retried', 0)), 'the next attempt passes retried');
  t.notOk(supersedes(at('retried', 0), at('running', 1)));
  t.ok(supersedes(at('running', 0, 1), at('failed', 4)), 'a new generation passes the old one');
  t.notOk(supersedes(at('succeeded', 9, 0), at('queued', 0, 1)));
});

t.test('a dead letter replayed runs again and its new outcome replaces the old failure', async (t) => {
  let fail = true;
  const flaky = defineTask({
    name: 'replay.me',
    handler: async () => {
      if (fail) throw new Error('not yet');
      return 'second time lucky';
    },
  });
  const stem = await Stem.create({ tasks: [flaky] });
  t.teardown(() => stem.close());
  const worker = stem.worker();
  await worker.start();
  const handle = await stem.enqueue(flaky, {});
  await t.rejects(handle.result({ timeoutMs: 60_000 }), /not yet/);
  t.equal((await stem.status(handle.id)).state, 'failed', 'dead-lettered first');
  fail = false;
  const replayed = await stem.broker.replayDeadLetters('default');
  t.same(
    replayed.map((letter) => letter.id),
    [handle.id],
  );
  await waitFor(async () => (await stem.status(handle.id)).state === 'succeeded', 'the replay to succeed');
  const status = await stem.status(handle.id);
  t.equal(status.result, 'second time lucky');
  t.equal(status.generation, 1, 'a replay is the next generation');
  t.equal(status.attempt, 0, 'starting at attempt 0');
});
