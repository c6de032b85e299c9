import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Stem } from '../../sdk/kernel.js';
import { ROUTING_WARNING, routing } from '../../plugins/routing/index.js';
import { runStem, startStem } from '../helpers/run-stem.js';

// Issue 26, item 7: a broadcast on a channel nobody subscribes to was accepted in silence and
// stayed queued forever. With a routing file, a channel it does not declare is most often a typo:
// publishing on one, or starting a worker that subscribes to one, warns (once per channel).

const fixture = fileURLToPath(new URL('../../fixtures/routing.yaml', import.meta.url));

/** Collects the routing warnings emitted while `body` runs (and the ticks after it). */
async function routingWarnings(body: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error): void => {
    if (warning.name === ROUTING_WARNING) seen.push(warning.message);
  };
  process.on('warning', listener);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

t.test('publishing on a broadcast channel the routing file does not declare warns once, naming the declared ones', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ file: fixture })] });
  t.teardown(() => stem.close());
  const warnings = await routingWarnings(async () => {
    await stem.enqueue('broadcast://maintenanse', {});
    await stem.enqueue('broadcast://maintenanse', {});
    await stem.enqueue('broadcast://maintenance', {});
  });
  t.equal(warnings.length, 1, 'one warning for the undeclared channel, none for the declared one');
  t.match(
    warnings[0],
    /^routing: broadcast:\/\/maintenanse is not a channel .*routing\.yaml declares \(declared: maintenance\); .*may reach no worker: fix the name or declare it under broadcasts$/,
  );
});

t.test('a worker subscribing to an undeclared channel warns; the declared ones, none and the default do not', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ file: fixture })] });
  t.teardown(() => stem.close());
  const warnings = await routingWarnings(async () => {
    t.same(
      stem.worker({ broadcasts: ['maintenance', 'maintenanse'] }).broadcasts,
      ['maintenance', 'maintenanse'],
      'still subscribed: a warning, not a refusal',
    );
    stem.worker({ broadcasts: [] });
    stem.worker({});
    stem.worker({ broadcasts: ['maintenance'] });
  });
  t.equal(warnings.length, 1);
  t.match(
    warnings[0],
    /^routing: the worker subscribes to broadcast channel "maintenanse", which .*routing\.yaml does not declare \(declared: maintenance\); .*fix the name \(--broadcasts, STEM_WORKER_BROADCASTS or worker\.broadcasts\)/,
  );
});

t.test('without broadcasts in the file, the warning says it declares none', async (t) => {
  const stem = await Stem.create({ plugins: [routing({ config: { queues: { reports: {} } } })] });
  t.teardown(() => stem.close());
  const warnings = await routingWarnings(async () => void (await stem.enqueue('broadcast://maintenance', {})));
  t.match(warnings, [/is not a channel routing config declares \(it declares none\)/]);
});

t.test('through the CLI: stem enqueue broadcast://typo and stem worker start --broadcasts typo warn on stderr', async (t) => {
  const common = ['--broker', 'memory://', '--routing-config', 'fixtures/routing.yaml'];
  const enqueued = await runStem(['enqueue', 'broadcast://maintenanse', '--args', '{}', ...common]);
  t.equal(enqueued.code, 0, enqueued.stderr);
  t.match(
    enqueued.stderr,
    /StemRoutingWarning: routing: broadcast:\/\/maintenanse is not a channel fixtures\/routing\.yaml declares \(declared: maintenance\)/,
  );
  const declared = await runStem(['enqueue', 'broadcast://maintenance', '--args', '{}', ...common]);
  t.notMatch(declared.stderr, /StemRoutingWarning/);

  const worker = await startStem(['worker', 'start', '--broadcasts', 'maintenanse', ...common]);
  t.teardown(() => worker.stop('SIGKILL'));
  await worker.waitForOutput(/ready on/, 120_000);
  // The warning goes to stderr and the ready line to stdout: either may be read first.
  await worker.waitForOutput(
    /StemRoutingWarning: routing: the worker subscribes to broadcast channel "maintenanse", which fixtures\/routing\.yaml does not declare/,
    120_000,
  );
  t.pass('the worker warned about the undeclared channel');
  t.equal(await worker.stop(), 0);
});
