import t from 'tap';
import { events } from '../../plugins/events/index.js';
import { Stem, type StemEvent } from '../../sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { add, broken } from './event-tasks.js';

t.test('stem.events in process (memory): a worker with events: true publishes its task and worker events in order', async (t) => {
  const stem = await Stem.create({ plugins: [events()], tasks: [add, broken] });
  t.teardown(() => stem.close());
  const iterator = stem.events.iterate();
  await iterator.ready;
  const seen: StemEvent[] = [];
  const reading = (async () => {
    for await (const event of iterator) seen.push(event);
  })();
  const failures: StemEvent[] = [];
  const off = stem.events.on('task-failed', (event) => failures.push(event));

  const worker = stem.worker({ events: true, concurrency: 1 });
  await worker.start();
  const ok = await stem.enqueue(add, { a: 1, b: 2 });
  t.equal(await ok.result({ timeoutMs: 60_000 }), 3);
  const bad = await stem.enqueue(broken, {});
  await waitFor(
    () => seen.some((e) => e.type === 'task-dead-lettered' && 'taskId' in e && e.taskId === bad.id),
    'the dead letter event',
    60_000,
  );
  await worker.stop();
  await waitFor(() => seen.some((e) => e.type === 'worker-offline'), 'worker-offline', 60_000);

  const of = (id: string) => seen.filter((e) => 'taskId' in e && e.taskId === id).map((e) => e.type);
  t.same(of(ok.id), ['task-received', 'task-started', 'task-succeeded']);
  t.same(of(bad.id), [
    ...['task-received', 'task-started', 'task-retried'],
    ...['task-received', 'task-started', 'task-retried'],
    ...['task-received', 'task-started', 'task-failed', 'task-dead-lettered'],
  ]);
  const succeeded = seen.find((e) => e.type === 'task-succeeded')!;
  t.match(succeeded, { workerId: worker.id, name: 'ev.add', queue: 'default', attempt: 0, runtimeMs: Number });
  t.match(failures, [{ type: 'task-failed', taskId: bad.id, reason: 'max-retries-exhausted', error: { message: 'broken on purpose' } }]);
  t.equal(seen[0]!.type, 'worker-online');
  t.ok(
    seen.some((e) => e.type === 'worker-heartbeat' && e.workerId === worker.id),
    'a heartbeat',
  );
  off();
  await stem.close();
  await reading;
  t.pass('the iterator ended with stem.close()');
});

t.test('a worker without events: true publishes nothing and listens to no signal', async (t) => {
  const stem = await Stem.create({ plugins: [events()], tasks: [add] });
  t.teardown(() => stem.close());
  const seen: StemEvent[] = [];
  await stem.events.subscribe((event) => seen.push(event));
  const worker = stem.worker({ concurrency: 1 });
  await worker.start();
  t.notOk(stem.signals.has('task-received'), 'no signal listener while no worker publishes');
  const handle = await stem.enqueue(add, { a: 2, b: 2 });
  t.equal(await handle.result({ timeoutMs: 60_000 }), 4);
  await worker.stop();
  // A worker with events on afterwards shows the bus works: its online event arrives, the other's never did.
  const second = stem.worker({ events: true });
  await second.start();
  await waitFor(() => seen.some((e) => e.type === 'worker-online'), 'worker-online of the second worker', 60_000);
  await second.stop();
  t.same(
    seen.filter((e) => e.workerId === worker.id),
    [],
  );
});
