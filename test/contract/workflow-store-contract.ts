import type { Test } from 'tap';
import type { WorkflowCheckpoint, WorkflowStore, WorkflowWaiter } from '../../sdk/contracts/workflow-store.js';
import { type CaseBody, type ContractFactory, runContract, uniqueName } from './support.js';

const NOW = 1_800_000_000_000;
const LEASE = 30_000;

function newRun(id: string, workflow = 'orders.fulfil') {
  return { id, workflow, version: 1, input: { orderId: id, lines: [{ sku: 'a', qty: 2 }] } };
}

function step(position: number, name: string, value: unknown, at = NOW): WorkflowCheckpoint {
  return { position, name, kind: 'step', value, startedAt: at, finishedAt: at };
}

function waiter(event: string, key: string, position: number, deadline?: number): WorkflowWaiter {
  return deadline === undefined
    ? { event, key, position, step: event, kind: 'event' }
    : { event, key, position, step: event, kind: 'event', deadline };
}

/** Creates a run and claims it for `owner`. */
async function claimed(store: WorkflowStore, owner = 'w1'): Promise<string> {
  const id = uniqueName('run');
  await store.createRun(newRun(id), NOW);
  const claim = await store.claim(id, owner, LEASE, NOW);
  if (!claim.claimed) throw new Error(`claim of a new run failed: ${claim.reason}`);
  return id;
}

const cases: ReadonlyArray<readonly [string, CaseBody<WorkflowStore>]> = [
  [
    'a run is created once: running, its input kept; creating the id again returns the stored run',
    async (t, store) => {
      const id = uniqueName('run');
      const first = await store.createRun({ ...newRun(id), queue: 'orders' }, NOW);
      t.equal(first.created, true);
      t.match(first.run, { id, workflow: 'orders.fulfil', version: 1, status: 'running', queue: 'orders', rewinds: 0, createdAt: NOW });
      t.same(first.run.input, newRun(id).input);
      const again = await store.createRun({ ...newRun(id), version: 2 }, NOW + 5);
      t.equal(again.created, false);
      t.equal(again.run.version, 1, 'the stored run is returned unchanged');
      t.same(await store.getRun(id), first.run);
      t.equal(await store.getRun(uniqueName('missing')), null, 'an unknown id reads as null');
      t.same(await store.checkpoints(uniqueName('missing')), []);
    },
  ],
  [
    'listRuns filters by workflow and status, newest first, up to the limit',
    async (t, store) => {
      const workflow = uniqueName('wf');
      const ids = [uniqueName('a'), uniqueName('b'), uniqueName('c')];
      for (const [i, id] of ids.entries()) await store.createRun(newRun(id, workflow), NOW + i);
      t.same(
        (await store.listRuns({ workflow })).map((run) => run.id),
        [...ids].reverse(),
      );
      t.same(
        (await store.listRuns({ workflow, limit: 2 })).map((run) => run.id),
        [ids[2], ids[1]],
      );
      await store.cancel(ids[1]!, 'no', NOW + 10);
      t.same(
        (await store.listRuns({ workflow, status: 'cancelled' })).map((run) => run.id),
        [ids[1]],
      );
    },
  ],
  [
    'a claim holds the lease: another owner is refused until it ends unrenewed; the old owner then lost it',
    async (t, store) => {
      const id = await claimed(store, 'w1');
      t.match(await store.claim(id, 'w2', LEASE, NOW + 1), { claimed: false, reason: 'leased' });
      t.equal(await store.renew(id, 'w1', LEASE, NOW + 10_000), true, 'the holder renews');
      t.match(await store.claim(id, 'w2', LEASE, NOW + LEASE + 1), { claimed: false, reason: 'leased' }, 'renewed: still held');
      const taken = await store.claim(id, 'w2', LEASE, NOW + 10_000 + LEASE + 1);
      t.equal(taken.claimed, true, 'taken over once the lease ended');
      t.equal(await store.renew(id, 'w1', LEASE, NOW + 50_000), false, 'the old holder cannot renew');
      t.equal(await store.saveCheckpoint(id, step(0, 'charge', 1), 'w1', NOW + 50_000), null, 'nor write under the lease');
      t.match(await store.claim(uniqueName('missing'), 'w1', LEASE, NOW), { claimed: false, reason: 'missing' });
    },
  ],
  [
    'a checkpoint is written once per position: a second writer gets the first one back',
    async (t, store) => {
      const id = await claimed(store);
      const first = await store.saveCheckpoint(id, step(0, 'charge', { chargeId: 'ch_1', cents: [1, 2] }), 'w1', NOW);
      t.same(first, step(0, 'charge', { chargeId: 'ch_1', cents: [1, 2] }));
      t.same(await store.saveCheckpoint(id, step(0, 'charge', { chargeId: 'ch_2' }), undefined, NOW + 1), first, 'the first one stays');
      await store.saveCheckpoint(id, { position: 2, name: 'payment', kind: 'event', timedOut: true, finishedAt: NOW }, 'w1', NOW);
      await store.saveCheckpoint(id, { position: 1, name: 'sleep', kind: 'sleep', value: { until: NOW + 5 }, finishedAt: NOW }, 'w1', NOW);
      const failed: WorkflowCheckpoint = {
        position: 3,
        name: 'ship',
        kind: 'step',
        error: { name: 'Error', message: 'no stock', code: 'x' },
        finishedAt: NOW,
      };
      await store.saveCheckpoint(id, failed, 'w1', NOW);
      const points = await store.checkpoints(id);
      t.same(
        points.map((point) => point.position),
        [0, 1, 2, 3],
        'by position',
      );
      t.equal(points[2]!.timedOut, true);
      t.same(points[3], failed);
    },
  ],
  [
    'suspending to sleep releases the lease and records when the run wakes; a non-holder cannot suspend',
    async (t, store) => {
      const id = await claimed(store);
      t.same(await store.suspend(id, 'w2', { wakeAt: NOW + 2_000 }, NOW), { suspended: false, lost: true });
      t.same(await store.suspend(id, 'w1', { wakeAt: NOW + 2_000 }, NOW), { suspended: true });
      const run = await store.getRun(id);
      t.match(run, { status: 'sleeping', wakeAt: NOW + 2_000 });
      t.equal(run?.lease, undefined);
      t.equal((await store.claim(id, 'w2', LEASE, NOW + 1)).claimed, true, 'anyone may claim a suspended run');
    },
  ],
  [
    'an emit delivers to the waiting run: the payload is checkpointed at the waiter position and the run is runnable',
    async (t, store) => {
      const id = await claimed(store);
      const key = uniqueName('order');
      t.same(await store.suspend(id, 'w1', { waiter: waiter('payment', key, 2, NOW + 60_000), wakeAt: NOW + 60_000 }, NOW), {
        suspended: true,
      });
      t.match(await store.getRun(id), { status: 'waiting', waiting: waiter('payment', key, 2, NOW + 60_000) });
      const deliveries = await store.emit('payment', key, { paid: true }, { now: NOW + 5, bufferTtlMs: 60_000 });
      t.equal(deliveries.length, 1);
      t.equal(deliveries[0]!.run.id, id);
      t.match(deliveries[0]!.checkpoint, { position: 2, name: 'payment', kind: 'event', value: { paid: true } });
      const run = await store.getRun(id);
      t.equal(run?.status, 'running');
      t.equal(run?.waiting, undefined, 'the waiter is gone');
      t.match(await store.checkpoints(id), [{ position: 2, value: { paid: true } }]);
      t.same(await store.emit('payment', key, { paid: false }, { now: NOW + 6, bufferTtlMs: 60_000 }), [], 'a second emit reaches nobody');
      t.match(await store.checkpoints(id), [{ position: 2, value: { paid: true } }], 'and changes nothing');
    },
  ],
  [
    'an emit reaches every run waiting on its (name, key) and no run waiting on another key',
    async (t, store) => {
      const key = uniqueName('order');
      const a = await claimed(store, 'wa');
      const b = await claimed(store, 'wb');
      const other = await claimed(store, 'wc');
      await store.suspend(a, 'wa', { waiter: waiter('shipped', key, 0) }, NOW);
      await store.suspend(b, 'wb', { waiter: waiter('shipped', key, 4) }, NOW);
      await store.suspend(other, 'wc', { waiter: waiter('shipped', `${key}-x`, 0) }, NOW);
      const deliveries = await store.emit('shipped', key, 'box 7', { now: NOW, bufferTtlMs: 1_000 });
      t.same(deliveries.map((delivery) => delivery.run.id).sort(), [a, b].sort());
      t.equal((await store.getRun(other))?.status, 'waiting');
    },
  ],
  [
    'an event emitted before anyone waits is buffered: the first wait on its (name, key) takes it, once, oldest first',
    async (t, store) => {
      const key = uniqueName('order');
      t.same(await store.emit('payment', key, { n: 1 }, { now: NOW, bufferTtlMs: 60_000 }), []);
      t.same(await store.emit('payment', key, { n: 2 }, { now: NOW + 1, bufferTtlMs: 60_000 }), []);
      const first = await claimed(store, 'w1');
      const got = await store.suspend(first, 'w1', { waiter: waiter('payment', key, 3) }, NOW + 2);
      t.match(got, { suspended: false, checkpoint: { position: 3, name: 'payment', kind: 'event', value: { n: 1 } } });
      t.match(await store.checkpoints(first), [{ position: 3, value: { n: 1 } }], 'recorded');
      t.equal((await store.getRun(first))?.lease?.owner, 'w1', 'not suspended: the lease is still held');
      const second = await claimed(store, 'w2');
      t.match(await store.suspend(second, 'w2', { waiter: waiter('payment', key, 0) }, NOW + 3), { checkpoint: { value: { n: 2 } } });
      const third = await claimed(store, 'w3');
      t.same(await store.suspend(third, 'w3', { waiter: waiter('payment', key, 0) }, NOW + 4), { suspended: true }, 'each event once');
    },
  ],
  [
    'a buffered event past its TTL is not delivered',
    async (t, store) => {
      const key = uniqueName('order');
      await store.emit('payment', key, 'late', { now: NOW, bufferTtlMs: 100 });
      const id = await claimed(store);
      t.same(await store.suspend(id, 'w1', { waiter: waiter('payment', key, 0) }, NOW + 101), { suspended: true });
    },
  ],
  [
    'suspending on a waiter whose position already has a checkpoint returns that checkpoint',
    async (t, store) => {
      const id = await claimed(store);
      const event: WorkflowCheckpoint = { position: 1, name: 'payment', kind: 'event', value: 'early', finishedAt: NOW };
      await store.saveCheckpoint(id, event, undefined, NOW);
      t.same(await store.suspend(id, 'w1', { waiter: waiter('payment', uniqueName('k'), 1) }, NOW), {
        suspended: false,
        checkpoint: event,
      });
    },
  ],
  [
    "a checkpoint at the waiter's position (a timeout) removes the waiter: a later emit is buffered, not delivered",
    async (t, store) => {
      const key = uniqueName('order');
      const id = await claimed(store);
      await store.suspend(id, 'w1', { waiter: waiter('payment', key, 0, NOW + 10), wakeAt: NOW + 10 }, NOW);
      await store.claim(id, 'w2', LEASE, NOW + 10);
      const timedOut = await store.saveCheckpoint(
        id,
        { position: 0, name: 'payment', kind: 'event', timedOut: true, finishedAt: NOW + 10 },
        'w2',
        NOW + 10,
      );
      t.equal(timedOut?.timedOut, true);
      t.same(await store.emit('payment', key, 'too late', { now: NOW + 11, bufferTtlMs: 1_000 }), []);
      t.same(await store.checkpoints(id), [timedOut]);
    },
  ],
  [
    'finish ends the run with its result or error; a final run cannot be claimed or written',
    async (t, store) => {
      const ok = await claimed(store);
      t.equal(await store.finish(ok, 'other', { status: 'succeeded', result: 1 }, NOW), false, 'only the holder finishes');
      t.equal(await store.finish(ok, 'w1', { status: 'succeeded', result: { tracking: 'tr_1' } }, NOW + 7), true);
      const done = await store.getRun(ok);
      t.match(done, { status: 'succeeded', result: { tracking: 'tr_1' }, finishedAt: NOW + 7 });
      t.equal(done?.lease, undefined);
      t.match(await store.claim(ok, 'w2', LEASE, NOW + 8), { claimed: false, reason: 'final' });
      const bad = await claimed(store);
      await store.finish(bad, 'w1', { status: 'failed', error: { name: 'TypeError', message: 'boom' } }, NOW);
      t.match(await store.getRun(bad), { status: 'failed', error: { name: 'TypeError', message: 'boom' } });
      t.equal(await store.saveCheckpoint(bad, step(0, 'x', 1), 'w1', NOW), null);
    },
  ],
  [
    'cancel ends a run that is not final, drops its lease and waiter; a final run stays as it was',
    async (t, store) => {
      const key = uniqueName('order');
      const id = await claimed(store);
      await store.suspend(id, 'w1', { waiter: waiter('payment', key, 0) }, NOW);
      const cancelled = await store.cancel(id, 'customer asked', NOW + 3);
      t.match(cancelled, { status: 'cancelled', error: { message: 'customer asked' }, finishedAt: NOW + 3 });
      t.same(await store.emit('payment', key, 1, { now: NOW + 4, bufferTtlMs: 1_000 }), [], 'nobody waits any more');
      const done = await claimed(store);
      await store.finish(done, 'w1', { status: 'succeeded', result: 1 }, NOW);
      t.equal((await store.cancel(done, 'late', NOW + 1))?.status, 'succeeded');
      t.equal(await store.cancel(uniqueName('missing'), 'x', NOW), null);
      const leased = await claimed(store);
      await store.cancel(leased, 'stop', NOW);
      t.equal(await store.renew(leased, 'w1', LEASE, NOW + 1), false, 'the advance in flight loses its lease');
    },
  ],
  [
    'rewind deletes the checkpoints from a position on and makes a finished run runnable again',
    async (t, store) => {
      const id = await claimed(store);
      for (const [i, name] of ['draft', 'send', 'archive'].entries()) await store.saveCheckpoint(id, step(i, name, i), 'w1', NOW);
      await store.finish(id, 'w1', { status: 'succeeded', result: 'done' }, NOW + 1);
      const run = await store.rewind(id, 1, NOW + 2);
      t.match(run, { status: 'running', rewinds: 1 });
      t.equal(run?.result, undefined);
      t.equal(run?.finishedAt, undefined);
      t.same(
        (await store.checkpoints(id)).map((point) => point.name),
        ['draft'],
      );
      t.equal((await store.claim(id, 'w2', LEASE, NOW + 3)).claimed, true);
      t.equal(await store.rewind(uniqueName('missing'), 0, NOW), null);
    },
  ],
];

/**
 * The WorkflowStore contract: runs created once, leases that fence writers, one checkpoint per
 * position, suspension and the event rule (deliver to waiters, else buffer per (name, key) with a
 * TTL, each buffered event taken once), finish, cancel and rewind.
 */
export async function workflowStoreContract(t: Test, factory: ContractFactory<WorkflowStore>): Promise<void> {
  await runContract(t, 'WorkflowStore contract', factory, cases);
}
