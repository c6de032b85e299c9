import t from 'tap';
import { Stem, defineTask, type StemConfig } from 'stem';
import { postgres } from '../../plugins/postgres/index.js';
import { ControlClient, control } from '../../plugins/control/index.js';
import { revoke, revokeTask } from '../../plugins/revoke/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { waitFor } from '../helpers/wait.js';

// The same operations over Postgres: the broker's broadcasts carry control, its revoke store keeps revokes and pauses.

t.test('on Postgres, ping reaches a worker, a stored pause and a revoke made before it started both hold', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueSchema('ops');
  const stems: Stem[] = [];
  t.teardown(async () => {
    await Promise.all(stems.map((stem) => stem.close()));
    await dropSchema(schema);
  });
  const ran: string[] = [];
  const note = defineTask({ name: 'ops.pg.note', handler: async (args: { label: string }) => void ran.push(args.label) });
  const open = async (): Promise<Stem> => {
    const config: StemConfig & { namespace: string } = {
      namespace: 'ops-pg',
      tasks: [note],
      plugins: [postgres({ url: testUrl, schema }), control(), revoke({ syncInterval: '200ms' })],
    };
    const stem = await Stem.create(config);
    stems.push(stem);
    return stem;
  };
  const admin = await open();
  await new ControlClient(admin).pauseQueue('held', { timeout: '100ms' });
  const revoked = await admin.enqueue(note, { label: 'revoked' }, { queue: 'jobs' });
  await revokeTask(admin, revoked.id);
  const kept = await admin.enqueue(note, { label: 'kept' }, { queue: 'jobs' });
  const held = await admin.enqueue(note, { label: 'held' }, { queue: 'held' });

  const workerSide = await open();
  const worker = workerSide.worker({ queues: ['jobs', 'held'] });
  await worker.start();
  t.same(worker.pausedQueues(), ['held']);
  await kept.result({ timeoutMs: 60_000 });
  const [pong] = await new ControlClient(admin).request('ping', {}, { destination: [worker.id], timeout: '30s' });
  t.match(pong?.reply, { workerId: worker.id, pausedQueues: ['held'] }, 'the worker answers over Postgres broadcasts');
  // The revoked task's cancelled state is written when the worker takes it, which need not be before the kept one's result.
  await waitFor(async () => (await revoked.status()).state === 'cancelled', 'the revoked task to be cancelled');
  t.equal((await revoked.status()).state, 'cancelled');
  await new ControlClient(admin).resumeQueue('held', { destination: [worker.id], timeout: '30s' });
  await held.result({ timeoutMs: 60_000 });
  t.same(ran.sort(), ['held', 'kept'], 'the revoked task never ran');
});
