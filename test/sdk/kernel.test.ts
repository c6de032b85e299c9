import t from 'tap';
import { ConfigError, MemoryResultBackend, Stem, defineConfig, defineTask, type StemPlugin } from '../../sdk/index.js';

t.test('plugins apply in order (async apply awaited) and close in reverse order', async (t) => {
  const events: string[] = [];
  const plugin = (name: string, delayMs: number): StemPlugin => ({
    name,
    async apply() {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      events.push(`apply ${name}`);
    },
    async close() {
      events.push(`close ${name}`);
    },
  });
  const stem = await Stem.create({ plugins: [plugin('a', 20), plugin('b', 0), plugin('c', 5)] });
  t.same(
    stem.plugins.map((p) => p.name),
    ['a', 'b', 'c'],
  );
  await stem.close();
  t.same(events, ['apply a', 'apply b', 'apply c', 'close c', 'close b', 'close a']);
});

t.test('a provided service replaces the memory default; others fall back to memory', async (t) => {
  const backend = new MemoryResultBackend();
  const stem = await Stem.create({ plugins: [{ name: 'my-backend', apply: (s) => s.provide('backend', backend) }] });
  t.teardown(() => stem.close());
  t.equal(stem.backend, backend);
  t.ok(stem.provides('backend'));
  t.notOk(stem.provides('broker'));
  t.ok(stem.service('lockStore'), 'a memory lock store is created on first use');
  t.equal(stem.service('lockStore'), stem.service('lockStore'), 'and kept');
});

t.test('bad plugin lists are refused by name', async (t) => {
  await t.rejects(
    Stem.create({
      plugins: [
        { name: 'x', apply() {} },
        { name: 'x', apply() {} },
      ],
    }),
    ConfigError,
  );
  await t.rejects(Stem.create({ plugins: [{ name: 'x' } as unknown as StemPlugin] }), /is not a plugin/);
  const failing: StemPlugin = {
    name: 'broken',
    apply() {
      throw new Error('cannot connect');
    },
  };
  let closed = false;
  const earlier: StemPlugin = {
    name: 'earlier',
    apply() {},
    async close() {
      closed = true;
    },
  };
  await t.rejects(Stem.create({ plugins: [earlier, failing] }), /cannot connect/);
  t.ok(closed, 'plugins applied before the failure are closed');
});

t.test('defineConfig returns what Stem.create takes', async (t) => {
  const ping = defineTask({ name: 'ping', handler: async () => 'pong' });
  const config = defineConfig({ tasks: [ping], defaultQueue: 'main' });
  const stem = await Stem.create(config);
  t.teardown(() => stem.close());
  await stem.worker().start();
  const handle = await stem.enqueue(ping, {});
  t.equal(handle.queue, 'main');
  t.equal(await handle.result({ timeoutMs: 60_000 }), 'pong');
});

t.test('every phase hook sees its work: enqueue, dispatch, execute, result', async (t) => {
  const calls: string[] = [];
  const echo = defineTask({ name: 'echo', handler: async (args: { v: number }, ctx) => ({ v: args.v, stamp: ctx.headers.stamp }) });
  const tracer: StemPlugin = {
    name: 'tracer',
    apply(stem) {
      stem.hooks.enqueue.tapPromise('tracer', async (envelope) => {
        calls.push('enqueue');
        return { ...envelope, headers: { ...envelope.headers, stamp: 'from-enqueue' } };
      });
      stem.hooks.dispatch.tapPromise('tracer', async (delivery) => {
        calls.push('dispatch');
        const v = (delivery.envelope.args as { v: number }).v;
        if (v === 2) return { action: 'cancel', reason: 'two is not allowed' };
        if (v === 3) return { action: 'reject', reason: 'three-rejected' };
        return undefined;
      });
      stem.hooks.execute.tap('tracer', (runner) => async (ctx) => {
        calls.push('execute:before');
        const result = await runner(ctx);
        calls.push('execute:after');
        return result;
      });
      stem.hooks.result.tapPromise('tracer', async (outcome) => {
        calls.push(`result:${outcome.state}`);
      });
    },
  };
  const stem = await Stem.create({ plugins: [tracer], tasks: [echo] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  t.same(await (await stem.enqueue(echo, { v: 1 })).result({ timeoutMs: 60_000 }), { v: 1, stamp: 'from-enqueue' });
  t.same(calls, ['enqueue', 'dispatch', 'execute:before', 'execute:after', 'result:succeeded']);
  calls.length = 0;
  const cancelled = await stem.enqueue(echo, { v: 2 });
  await t.rejects(cancelled.result({ timeoutMs: 60_000 }), /two is not allowed/);
  t.same(calls, ['enqueue', 'dispatch', 'result:cancelled']);
  const rejected = await stem.enqueue(echo, { v: 3 });
  await t.rejects(rejected.result({ timeoutMs: 60_000 }));
  t.equal((await stem.broker.getDeadLetter('default', rejected.id))?.reason, 'three-rejected');
});

t.test('a dispatch defer puts the task back for later and it runs then', async (t) => {
  let deferred = 0;
  const once = defineTask({ name: 'once', handler: async () => 'ran' });
  const stem = await Stem.create({
    tasks: [once],
    plugins: [
      {
        name: 'defer-first',
        apply: (s) =>
          s.hooks.dispatch.tapPromise('defer-first', async () => (deferred++ === 0 ? { action: 'defer', delayMs: 30 } : undefined)),
      },
    ],
  });
  t.teardown(() => stem.close());
  await stem.worker().start();
  t.equal(await (await stem.enqueue(once, {})).result({ timeoutMs: 60_000 }), 'ran');
  t.equal(deferred, 2, 'dispatched twice: deferred, then run');
});

t.test('the workerOptions hook adjusts workers before they start', async (t) => {
  const stem = await Stem.create({
    plugins: [
      {
        name: 'subscribe-all',
        apply: (s) => s.hooks.workerOptions.tap('subscribe-all', (options) => ({ ...options, broadcasts: ['maintenance'] })),
      },
    ],
  });
  t.teardown(() => stem.close());
  t.same(stem.worker().broadcasts, ['maintenance']);
});

t.test('the ready hook runs once every plugin is applied, whatever the order', async (t) => {
  const seen: string[] = [];
  const early: StemPlugin = {
    name: 'early',
    apply: (stem) =>
      stem.hooks.ready.tap('early', () => {
        seen.push(stem.provides('backend') ? 'ready with the backend' : 'ready without the backend');
      }),
  };
  const late: StemPlugin = { name: 'late', apply: (stem) => stem.provide('backend', new MemoryResultBackend()) };
  const stem = await Stem.create({ plugins: [early, late] });
  t.teardown(() => stem.close());
  t.same(seen, ['ready with the backend']);
});
