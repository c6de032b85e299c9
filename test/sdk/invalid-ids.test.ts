import t, { type Test } from 'tap';
import { postgres } from '../../plugins/postgres/index.js';
import { setRateLimit } from '../../plugins/rate-limit/index.js';
import { revokeTask } from '../../plugins/revoke/index.js';
import { defineWorkflow, workflows, workflowsOf } from '../../plugins/workflows/index.js';
import { InvalidNameError, Stem, type StemPlugin } from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName } from '../contract/support.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';

// Enqueue refuses an id no store can hold (NUL, empty, over 256 bytes, control characters, a lone
// surrogate). Reading or acting on such an id must be refused the same way, before any store is asked:
// Postgres answered with its driver's "invalid byte sequence", memory and Redis with `pending`.
const NUL_ID = 'a\u0000b';
const BAD_IDS: Array<[string, string, RegExp]> = [
  ['NUL', NUL_ID, /^invalid task id: "a\\u0000b": it contains the control character U\+0000 at index 1; no task can have it/],
  ['empty', '', /^invalid task id: it is empty; no task can have it/],
  ['too long', 'x'.repeat(257), /^invalid task id: "x{40}…": it is 257 bytes long, over the limit of 256 bytes/],
  ['newline', 'a\nb', /^invalid task id: "a\\nb": it contains the control character U\+000A/],
  ['lone surrogate', 'a\ud800', /it contains a lone UTF-16 surrogate/],
];
const RUN_ID = /^invalid workflow run id: "a\\u0000b": it contains the control character U\+0000 at index 1; run ids are 1 to 256 bytes/;

const flow = defineWorkflow({ name: 'ids.flow', run: async (input: { n: number }) => input.n });

/** Every task-id entry point, each refusing `id` with InvalidNameError whose message matches `message`. */
async function taskIdEntryPoints(t: Test, stem: Stem, id: string, message: RegExp, what: string): Promise<void> {
  const refused = { constructor: InvalidNameError, message };
  await t.rejects(stem.status(id), refused, `${what}: status`);
  t.throws(() => stem.handle(id), refused, `${what}: handle`);
  await t.rejects(stem.retry(id), refused, `${what}: retry`);
  await t.rejects(revokeTask(stem, id), refused, `${what}: revokeTask`);
  await t.rejects(revokeTask(stem, ['fine-id', id]), refused, `${what}: revokeTask of a list holding it`);
}

/** Every workflow-run entry point refusing the NUL id. */
async function runIdEntryPoints(t: Test, stem: Stem): Promise<void> {
  const runs = workflowsOf(stem);
  const refused = { constructor: InvalidNameError, message: RUN_ID };
  await t.rejects(runs.start(flow, { n: 1 }, { id: NUL_ID }), refused, 'start({ id })');
  await t.rejects(runs.get(NUL_ID), refused, 'get');
  await t.rejects(runs.show(NUL_ID), refused, 'show');
  await t.rejects(runs.cancel(NUL_ID), refused, 'cancel');
  await t.rejects(runs.rewind(NUL_ID, 'step'), refused, 'rewind');
  await t.rejects(runs.wait(NUL_ID, { timeoutMs: 1 }), refused, 'wait');
  t.throws(() => runs.handle(NUL_ID), refused, 'handle');
}

/** A workflow event's name and key, and a rate limit's task name, holding NUL: refused before any store is asked. */
async function eventAndRateLimitEntryPoints(t: Test, stem: Stem): Promise<void> {
  const runs = workflowsOf(stem);
  await t.rejects(
    runs.emit('payment', NUL_ID, { amount: 1 }),
    { constructor: InvalidNameError, message: /^invalid workflow event key: "a\\u0000b": it contains the control character U\+0000/ },
    'emit with a NUL key',
  );
  await t.rejects(
    runs.emit('pay\u0000ment', 'order-1'),
    { constructor: InvalidNameError, message: /^invalid workflow event name: "pay\\u0000ment"/ },
    'emit with a NUL event name',
  );
  await t.rejects(
    runs.emit('', 'order-1'),
    { constructor: InvalidNameError, message: /^invalid workflow event name: it is empty/ },
    'emit with no event name',
  );
  t.same(await runs.emit('payment', ''), [], "'' is a key: emitted, reaching no run");
  await t.rejects(
    setRateLimit(stem, NUL_ID, '10/s'),
    { constructor: InvalidNameError, message: /^invalid task name: "a\\u0000b"/ },
    'setRateLimit with a NUL task name',
  );
}

t.test('an id no task can have is refused by every read and act entry point, on memory', async (t) => {
  const stem = await Stem.create({ plugins: [workflows({ definitions: [flow] })] });
  t.teardown(() => stem.close());
  for (const [what, id, message] of BAD_IDS) await taskIdEntryPoints(t, stem, id, message, what);
  t.same(await stem.service('revokeStore').list(stem.settings.namespace), [], 'no revoke stored, not even the valid id beside it');
  await runIdEntryPoints(t, stem);
  t.same(await workflowsOf(stem).list(), [], 'no run created');
  await eventAndRateLimitEntryPoints(t, stem);

  t.equal((await stem.status('not-yet-known')).state, 'pending', 'an id that can exist but is unknown is still pending');
  t.equal(stem.handle('not-yet-known').id, 'not-yet-known');
  t.equal((await revokeTask(stem, 'not-yet-known')).length, 1, 'a valid id is still revoked');
});

t.test('the CLI prints one line and exits 64 for an id no task can have', async (t) => {
  const memory = ['--broker', 'memory://', '--backend', 'memory://'];
  const commands: Array<[string, string[]]> = [
    ['result get', ['result', 'get', NUL_ID]],
    ['result get (empty)', ['result', 'get', '']],
    ['result wait', ['result', 'wait', 'a\nb', '--timeout', '1s']],
    ['result retry', ['result', 'retry', NUL_ID]],
    ['dlq show', ['dlq', 'show', NUL_ID]],
    ['dlq replay --ids', ['dlq', 'replay', '--ids', `ok,${NUL_ID}`]],
    ['worker revoke', ['worker', 'revoke', 'ok', NUL_ID]],
  ];
  for (const [what, argv] of commands) {
    const run = await runInProcess([...argv, ...memory], { env: { STEM_REVOKE_STORE_URL: 'memory://' } });
    t.equal(run.code, 64, `${what}: exit 64 (usage)`);
    t.match(run.stderr, /^stem: invalid task id: .*no task can have it.*\n$/, `${what}: the one-line message`);
    t.equal(run.stderr.split('\n').length, 2, `${what}: one line, no stack`);
    t.equal(run.stdout, '', `${what}: nothing on stdout`);
  }
});

t.test('on Postgres the id is refused before the driver sees it', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueSchema('invalid_ids');
  let opened: Stem | undefined;
  t.teardown(async () => {
    await opened?.close();
    await dropSchema(schema);
  });
  const plugins: StemPlugin[] = [postgres({ url: testUrl, schema, namespace: uniqueName('ns') }), workflows({ definitions: [flow] })];
  const stem = await Stem.create({ plugins });
  opened = stem;
  // What leaked before: pg's own error, not a Stem one.
  await t.rejects(stem.backend.get(NUL_ID), /invalid byte sequence/, 'the driver itself refuses NUL');
  await taskIdEntryPoints(t, stem, NUL_ID, BAD_IDS[0]![2], 'NUL');
  await t.rejects(stem.handle('fine-id').result({ timeoutMs: 1 }), { name: 'ResultTimeoutError' }, 'a valid id is read as before');
  await runIdEntryPoints(t, stem);
  await eventAndRateLimitEntryPoints(t, stem);
});
