import t from 'tap';
import { stateWriteKey } from '../../sdk/contracts/index.js';
import type { Envelope } from '../../sdk/envelope.js';
import { SqliteBroker, SqliteConnection, SqliteResultBackend } from '../../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../../plugins/sqlite/sqlite-options.js';
import { tempDir, uniqueNamespace } from './sqlite-harness.js';

// The combined write (publish or ack with the states, one transaction) goes through the contract's
// ResultBackend.stateWriter(key): a backend on the broker's connection answers, any other declines.
const dir = tempDir('state-writer');
t.teardown(() => dir.cleanup());

function envelope(id: string): Envelope {
  return {
    id,
    name: 'noop',
    args: {},
    headers: {},
    queue: 'q',
    priority: 0,
    attempt: 0,
    maxRetries: 0,
    visibilityTimeoutMs: 30_000,
    createdAt: Date.now(),
    meta: {},
  };
}

t.test('a backend on the broker connection writes the queued state in the publish transaction', async (t) => {
  const options = resolveSqliteOptions({ url: dir.url('one.db') });
  const settings = { namespace: uniqueNamespace(), resultTtlMs: 60_000 };
  const broker = new SqliteBroker(await SqliteConnection.open(options), settings);
  const backend = new SqliteResultBackend(await SqliteConnection.open(options), settings);
  t.teardown(async () => {
    await broker.close();
    await backend.close();
  });
  t.equal(backend.stateWriter(stateWriteKey('sqlite')), undefined, 'a key of another connection is declined');
  const queued = { id: 't1', state: 'queued' as const, name: 'noop', queue: 'q', attempt: 0, updatedAt: Date.now() };
  t.equal(await broker.publishWithStates(backend, [queued], {}, [envelope('t1')]), true);
  t.equal((await backend.get('t1'))?.state, 'queued');
  t.equal(await broker.pending('q'), 1);
});

t.test('a backend on another file declines: the producer writes separately', async (t) => {
  const settings = { namespace: uniqueNamespace(), resultTtlMs: 60_000 };
  const broker = new SqliteBroker(await SqliteConnection.open(resolveSqliteOptions({ url: dir.url('a.db') })), settings);
  const backend = new SqliteResultBackend(await SqliteConnection.open(resolveSqliteOptions({ url: dir.url('b.db') })), settings);
  t.teardown(async () => {
    await broker.close();
    await backend.close();
  });
  const queued = { id: 't2', state: 'queued' as const, name: 'noop', queue: 'q', attempt: 0, updatedAt: Date.now() };
  t.equal(await broker.publishWithStates(backend, [queued], {}, [envelope('t2')]), false);
  t.equal(await broker.ackWithStates(backend, [queued], 60_000, []), false);
  t.equal(await broker.pending('q'), 0, 'nothing was published');
});
