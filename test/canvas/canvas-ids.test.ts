import t from 'tap';
import { canvas, canvasOf, chord, task } from '../../plugins/canvas/index.js';
import { InvalidNameError, Stem, defineTask } from '../../sdk/index.js';

const echo = defineTask({ name: 'ids.echo', handler: async (args: { n: number }) => args.n });

// A canvas writes its chain status, group and chord records before it enqueues a task: an id Postgres
// text cannot hold (NUL) must be refused before that, as enqueue refuses it, not by the driver.
t.test('a canvas id no store can hold is refused with InvalidNameError before anything is written', async (t) => {
  const stem = await Stem.create({ tasks: [echo], plugins: [canvas()] });
  t.teardown(() => stem.close());
  const canvases = canvasOf(stem);
  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['chain id', 'chain\u0000a', () => canvases.chain([task(echo, { n: 1 }), task(echo, { n: 2 })], { id: 'chain\u0000a' })],
    ['step id', 'step\u0000a', () => canvases.chain([task(echo, { n: 1 }), task(echo, { n: 2 }, { id: 'step\u0000a' })])],
    [
      'chord id',
      'chord\u0000a',
      () => canvases.chord({ body: [task(echo, { n: 1 })], callback: task(echo, { n: 0 }, { id: 'chord\u0000a' }) }),
    ],
    ['member id', 'member\u0000a', () => canvases.group([task(echo, { n: 1 }, { id: 'member\u0000a' })])],
    [
      'nested chord id',
      'inner\u0000a',
      () => canvases.chain([chord({ body: [task(echo, { n: 1 })], callback: task(echo, { n: 0 }, { id: 'inner\u0000a' }) })]),
    ],
  ];
  for (const [what, id, launch] of cases) {
    await t.rejects(
      launch(),
      { constructor: InvalidNameError, message: /^invalid task id: ".*": it contains the control character U\+0000/ },
      what,
    );
    t.equal(await stem.backend.get(id), null, `${what}: no state written`);
  }
  await t.rejects(canvases.group([task(echo, { n: 1 })], { groupId: 'group\u0000a' }), {
    constructor: InvalidNameError,
    message: /^invalid group id: it contains the control character U\+0000 at index 5; give option "groupId"/,
  });
  t.equal(await canvases.groupResult('group\u0000a'), null, 'no group written');
  await t.rejects(canvases.group([task(echo, { n: 1 })], { groupId: '' }), {
    constructor: InvalidNameError,
    message: /invalid group id: it is empty/,
  });
  t.equal((await stem.enqueue(echo, { n: 1 }, { id: 'plain' })).id, 'plain', 'ordinary ids still go through');
});
