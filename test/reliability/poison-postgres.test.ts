import t from 'tap';
import { Stem, defineTask } from '../../sdk/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { adminQuery, dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { waitFor } from '../helpers/wait.js';

if (await requirePostgres(t)) {
  t.test('a worker dead-letters rows that are not JSON or miss fields as malformed-envelope, and runs the next task', async (t) => {
    const schema = uniqueSchema('poison');
    t.teardown(() => dropSchema(schema));
    const ran: number[] = [];
    const fine = defineTask({ name: 'poison.fine', handler: async (args: { n: number }) => void ran.push(args.n) });
    const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, pollIntervalMs: 200 })], tasks: [fine] });
    t.teardown(() => stem.close());
    await adminQuery(
      `insert into "${schema}".stem_messages (namespace, queue, task_id, priority, payload) values ('default', 'default', 'broken-1', 5, '{not json'), ('default', 'default', 'broken-2', 5, '{"id":"x","name":"poison.fine"}')`,
    );
    const good = await stem.enqueue(fine, { n: 1 });
    await stem.worker().start();
    await good.result({ timeoutMs: 60_000 });
    await waitFor(async () => (await stem.broker.listDeadLetters('default')).total === 2, 'two dead letters');
    const letters = (await stem.broker.listDeadLetters('default')).entries;
    t.same(
      letters.map((letter) => letter.reason),
      ['malformed-envelope', 'malformed-envelope'],
    );
    t.match(letters.map((letter) => String(letter.meta.error)).sort(), [/field "queue" must be a string/, /not JSON/]);
    t.same(ran, [1], 'only the valid task ran');
  });
}
