import t from 'tap';
import {
  CONCURRENCY_HEADERS,
  defineTask,
  MemoryBroker,
  MemoryResultBackend,
  Stem,
  UnsupportedCapabilityError,
  UsageError,
} from '../../sdk/index.js';

/** A broker without the concurrency capability, as a third-party one may be (every bundled broker has it). */
class PlainBroker extends MemoryBroker {
  // @ts-expect-error: a broker may lack the optional capability; the memory broker has it.
  override readonly concurrency = undefined;
}

const keyed = defineTask({
  name: 'flow.keyed',
  options: { concurrencyKey: (args: { tenant: string }) => args.tenant, concurrencyLimit: 2 },
  handler: async () => 'ran',
});
const plain = defineTask({ name: 'flow.plain', handler: async () => 'ran' });

t.test('a broker without the concurrency capability refuses keyed tasks with a typed error', async (t) => {
  const broker = new PlainBroker();
  const stem = await Stem.create({
    plugins: [
      {
        name: 'plain-broker',
        apply(stem) {
          stem.provide('broker', broker);
          stem.provide('backend', new MemoryResultBackend());
        },
      },
    ],
    tasks: [keyed, plain],
  });
  t.teardown(() => stem.close());

  const refused = await stem.enqueue(keyed, { tenant: 'a' }).catch((error: unknown) => error);
  t.type(refused, UnsupportedCapabilityError, 'at enqueue: a keyed task');
  t.match(
    (refused as Error).message,
    /task "flow\.keyed" with a concurrency key needs the broker capability "concurrency", which the Plain broker/,
  );
  t.equal((refused as UnsupportedCapabilityError).exitCode, 64);

  const byHeader = await stem.enqueue('flow.plain', {}, { headers: { [CONCURRENCY_HEADERS.key]: 'a' } }).catch((error: unknown) => error);
  t.type(byHeader, UnsupportedCapabilityError, 'at enqueue: a task keyed by header');
  t.equal(await stem.broker.pending('default'), 0, 'nothing was published');

  const worker = stem.worker({ queues: ['default'] });
  await t.rejects(worker.start(), UnsupportedCapabilityError, 'at worker start: a registered keyed task');
});

t.test('bad concurrency options are usage errors at enqueue', async (t) => {
  const stem = await Stem.create({ tasks: [keyed] });
  t.teardown(() => stem.close());
  await t.rejects(stem.enqueue(keyed, { tenant: '' }), UsageError, 'an empty key');
  await t.rejects(stem.enqueue(keyed, { tenant: 'a' }, { concurrencyLimit: 0 }), UsageError, 'a limit under 1');
  await t.rejects(stem.enqueue(keyed, { tenant: 'a' }, { ordered: true }), UsageError, 'ordered with a limit of 2');
  await t.rejects(
    stem.enqueue('flow.keyed', {}, { headers: { [CONCURRENCY_HEADERS.key]: 'a', [CONCURRENCY_HEADERS.limit]: 'two' } }),
    UsageError,
    'a bad limit header',
  );
  await t.rejects(
    stem.enqueue('broadcast://maintenance', {}, { headers: { [CONCURRENCY_HEADERS.key]: 'a' } }),
    { name: 'UsageError', message: /cannot carry a concurrency key/ },
    'a broadcast with a key',
  );
  const handle = await stem.enqueue(keyed, { tenant: 'a' }, { headers: { [CONCURRENCY_HEADERS.key]: 'mine' } });
  t.ok(handle.id, 'a header set by the caller wins over the option');
});
