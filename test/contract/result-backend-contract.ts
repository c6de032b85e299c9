import type { Test } from 'tap';
import type { ResultBackend, TaskStatus, WorkerHeartbeat } from '../../sdk/contracts/result-backend.js';
import { ListingNotSupportedError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import {
  CLOCK_SLACK_MS,
  type CaseBody,
  type ContractFactory,
  retryOnStall,
  runContract,
  STALLED,
  sleep,
  uniqueName,
  waitFor,
} from './support.js';

/** A status of a fresh task id; `overrides` replace any field. */
function makeStatus(overrides: Partial<TaskStatus> = {}): TaskStatus {
  return { id: uuidv7(), state: 'succeeded', attempt: 0, updatedAt: Date.now(), ...overrides };
}

function makeBeat(overrides: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat {
  const now = Date.now();
  return {
    workerId: uniqueName('worker'),
    hostname: 'contract-host',
    pid: 4242,
    queues: ['default', 'reports'],
    startedAt: now - 1_000,
    at: now,
    stats: { processed: 3, failed: 1, inflight: 0, concurrency: 4 },
    ...overrides,
  };
}

/** The heartbeats of `workerIds` among the listed workers (other runs may share the store). */
async function listedBeats(backend: ResultBackend, workerIds: readonly string[]): Promise<WorkerHeartbeat[]> {
  return (await backend.listWorkers()).filter((beat) => workerIds.includes(beat.workerId));
}

const cases: ReadonlyArray<readonly [string, CaseBody<ResultBackend>]> = [
  [
    'a stored status reads back with every field',
    async (t, backend) => {
      const status = makeStatus({
        state: 'failed',
        name: 'reports.build',
        queue: 'reports',
        result: { partial: [1, 2, 3], nested: { ok: false } },
        error: { type: 'TypeError', message: 'x is undefined', stack: 'TypeError: x is undefined\n    at build', code: 'boom' },
        attempt: 2,
        progress: { done: 5, of: 10 },
        workerId: 'worker-1',
        meta: { 'stem.chain': ['a', 'b'], durationMs: 12 },
      });
      await backend.set([status]);
      t.same(await backend.get(status.id), status);
    },
  ],
  [
    'strings holding NUL or a lone UTF-16 surrogate read back exactly, in results, errors, args and keys, and are listed',
    async (t, backend) => {
      const name = uniqueName('odd');
      const now = Date.now();
      const statuses = [
        makeStatus({ name, result: 'a\u0000b', updatedAt: now - 3 }),
        makeStatus({ name, result: '\ud800', updatedAt: now - 2 }),
        makeStatus({ name, result: { 'k\u0000ey': ['v\u0000', '\udc00x'], plain: 'é 🎉' }, updatedAt: now - 1 }),
        makeStatus({
          name,
          state: 'failed',
          error: { type: 'Error', message: 'bad \u0000 \ud800' },
          args: { text: 'y\u0000\udfff' },
          updatedAt: now,
        }),
      ];
      await backend.set(statuses);
      for (const status of statuses) t.same(await backend.get(status.id), status, `${status.id} read back`);
      t.equal((await backend.get(statuses[0]!.id))?.result, 'a\u0000b', 'strictly equal');
      t.equal((await backend.get(statuses[1]!.id))?.result, '\ud800', 'strictly equal');
      if (backend.listTasks === undefined) return;
      let listed: Awaited<ReturnType<typeof backend.listTasks>>;
      try {
        listed = await backend.listTasks({ name, limit: 10 });
      } catch (error) {
        // A backend that has the method but cannot list in this layout (Redis Cluster) says so.
        if (error instanceof ListingNotSupportedError) return;
        throw error;
      }
      t.same(
        listed.tasks.map((task) => task.id),
        statuses.map((status) => status.id).reverse(),
        'listed newest first, filtered by name',
      );
    },
  ],
  [
    'a failed state keeps the args and the envelope a retry needs (stem.retry), values of any JSON shape',
    async (t, backend) => {
      const status = makeStatus({
        state: 'failed',
        name: 'reports.build',
        queue: 'reports',
        error: { type: 'Error', message: 'boom' },
        args: { html: '<img src=x onerror=alert(1)>', list: [1, 'two', null], nested: { deep: true } },
      });
      status.envelope = {
        id: status.id,
        name: 'reports.build',
        headers: { tenant: 'acme' },
        queue: 'reports',
        priority: 7,
        attempt: 1,
        maxRetries: 3,
        notBefore: 1,
        visibilityTimeoutMs: 30_000,
        createdAt: 2,
        meta: { 'stem.generation': 2, 'stem.retryPolicy': { maxRetries: 3 } },
      };
      await backend.set([status]);
      t.same(await backend.get(status.id), status);
    },
  ],
  [
    'an unknown id reads as null',
    async (t, backend) => {
      t.equal(await backend.get(uuidv7()), null);
    },
  ],
  [
    'a later write replaces the whole status, error and result included',
    async (t, backend) => {
      const id = uuidv7();
      await backend.set([makeStatus({ id, state: 'retried', error: { type: 'Error', message: 'flaky' }, attempt: 0 })]);
      const succeeded = makeStatus({ id, state: 'succeeded', result: 42, attempt: 1 });
      await backend.set([succeeded]);
      const afterSuccess = await backend.get(id);
      t.same(afterSuccess, succeeded);
      t.equal(afterSuccess?.error, undefined, 'the old error is gone');
      const running = makeStatus({ id, state: 'running', attempt: 2 });
      await backend.set([running]);
      const afterRunning = await backend.get(id);
      t.same(afterRunning, running);
      t.equal(afterRunning?.result, undefined, 'the old result is gone');
    },
  ],
  [
    'several statuses are written in one call',
    async (t, backend) => {
      const statuses = [makeStatus({ state: 'queued' }), makeStatus({ state: 'running' }), makeStatus({ state: 'cancelled' })];
      await backend.set(statuses);
      t.same(await Promise.all(statuses.map((status) => backend.get(status.id))), statuses);
    },
  ],
  [
    'a state older than the stored one is never written, whatever order the writes arrive in',
    async (t, backend) => {
      // [what is stored, what arrives late, what must be read]: by generation, attempt, then phase.
      const orders: Array<[Partial<TaskStatus>, Partial<TaskStatus>, 'stored' | 'late']> = [
        [{ state: 'succeeded', result: 'kept' }, { state: 'queued' }, 'stored'],
        [{ state: 'succeeded', result: 'kept' }, { state: 'running' }, 'stored'],
        [{ state: 'running' }, { state: 'queued' }, 'stored'],
        [{ state: 'retried' }, { state: 'running' }, 'stored'],
        [{ state: 'running', attempt: 1 }, { state: 'retried', attempt: 0 }, 'stored'],
        [{ state: 'failed', attempt: 2 }, { state: 'succeeded', attempt: 1 }, 'stored'],
        [{ state: 'failed', result: 'first' }, { state: 'succeeded', result: 'second' }, 'stored'],
        [{ state: 'running', generation: 1 }, { state: 'failed', generation: 0, attempt: 3 }, 'stored'],
        [{ state: 'queued' }, { state: 'succeeded', result: 'new' }, 'late'],
        [{ state: 'running', progress: 1 }, { state: 'running', progress: 2 }, 'late'],
        [{ state: 'retried' }, { state: 'running', attempt: 1 }, 'late'],
        [{ state: 'failed' }, { state: 'queued', generation: 1 }, 'late'],
      ];
      for (const [first, second, winner] of orders) {
        const id = uuidv7();
        const stored = makeStatus({ id, ...first });
        const late = makeStatus({ id, ...second });
        await backend.set([stored]);
        await backend.set([late]);
        const label = `${JSON.stringify(first)} then ${JSON.stringify(second)}`;
        t.same(
          await backend.get(id),
          winner === 'stored' ? stored : late,
          `${label}: reads the ${winner === 'stored' ? 'first' : 'second'}`,
        );
      }
    },
  ],
  [
    'the order holds within one batch of writes, large or small, and across batches',
    async (t, backend) => {
      for (const size of [1, 3, 12]) {
        const ids = Array.from({ length: size }, () => uuidv7());
        const succeeded = ids.map((id) => makeStatus({ id, state: 'succeeded', result: id }));
        // A batch holding both writes of each id, the newer first.
        await backend.set(ids.flatMap((id, i) => [succeeded[i]!, makeStatus({ id, state: 'queued' })]));
        t.same(await Promise.all(ids.map((id) => backend.get(id))), succeeded, `${size}: the newer write of one batch stands`);
        await backend.set(
          ids.map((id) => makeStatus({ id, state: 'running' })),
          { quiet: true },
        );
        await backend.set(
          ids.map((id) => makeStatus({ id, state: 'queued' })),
          { quiet: true },
        );
        t.same(await Promise.all(ids.map((id) => backend.get(id))), succeeded, `${size}: later batches of older states change nothing`);
      }
    },
  ],
  [
    'a write that is not applied notifies no watcher',
    async (t, backend) => {
      const id = uuidv7();
      const seen: TaskStatus[] = [];
      const unsubscribe = await backend.watch(id, (status) => seen.push(status));
      await backend.set([makeStatus({ id, state: 'succeeded', result: 'done' })]);
      await backend.set([makeStatus({ id, state: 'running' })]);
      await backend.set([makeStatus({ id, state: 'queued' })]);
      await backend.set([makeStatus({ id, state: 'failed', attempt: 1 })]);
      t.ok(await waitFor(() => seen.length >= 2), 'the applied writes arrive');
      await sleep(200);
      t.same(
        seen.map((status) => status.state),
        ['succeeded', 'failed'],
        'only the applied writes were heard',
      );
      await unsubscribe();
    },
  ],
  [
    'an expired state does not hold back a new write',
    async (t, backend) => {
      const id = uuidv7();
      await backend.set([makeStatus({ id, state: 'succeeded' })], { ttlMs: 200 });
      await sleep(600);
      const queued = makeStatus({ id, state: 'queued' });
      await backend.set([queued]);
      t.same(await backend.get(id), queued);
    },
  ],
  [
    'a watcher sees each later write, and nothing after it unsubscribes',
    async (t, backend) => {
      const id = uuidv7();
      const seen: TaskStatus[] = [];
      const unsubscribe = await backend.watch(id, (status) => seen.push(status));
      await backend.set([makeStatus({ id, state: 'running' })]);
      await backend.set([makeStatus({ id, state: 'succeeded', result: 'done' })]);
      t.ok(await waitFor(() => seen.length >= 2), 'both writes arrive');
      t.same(
        seen.map((status) => status.state),
        ['running', 'succeeded'],
        'in order',
      );
      t.equal(seen[1]?.result, 'done');
      await unsubscribe();
      await backend.set([makeStatus({ id, state: 'failed', attempt: 1 })]);
      await sleep(300);
      t.equal(seen.length, 2, 'no call after unsubscribe');
    },
  ],
  [
    'watchCurrent (where a backend has it) answers the stored state and hears the later writes',
    async (t, backend) => {
      if (backend.watchCurrent === undefined) {
        t.plan(0, 'skip: this backend has no watchCurrent (optional): waitForTerminalStatus uses watch and get');
        return;
      }
      const unknown = await backend.watchCurrent(uuidv7(), () => undefined);
      t.equal(unknown.current, null, 'an unknown id answers null');
      await unknown.unsubscribe();
      const id = uuidv7();
      const running = makeStatus({ id, state: 'running' });
      await backend.set([running]);
      const seen: TaskStatus[] = [];
      const { unsubscribe, current } = await backend.watchCurrent(id, (status) => seen.push(status));
      t.same(current, running, 'the state stored when the watch began');
      await backend.set([makeStatus({ id, state: 'succeeded', result: 'done' })]);
      t.ok(await waitFor(() => seen.some((status) => status.state === 'succeeded')), 'a later write arrives');
      // On Redis Cluster a PUBLISH crosses the cluster bus, so the notice of the write the watch
      // began with may still arrive after it; nothing else may.
      t.same(
        seen.filter((status) => status.state !== 'running').map((status) => status.state),
        ['succeeded'],
        'the later write, once, and no state the task never had',
      );
      await unsubscribe();
    },
  ],
  [
    'a status written with ttlMs is gone after it',
    async (t, backend) => {
      const status = makeStatus();
      const before = Date.now();
      await backend.set([status], { ttlMs: 200 });
      const read = await backend.get(status.id);
      // Only a read that came back within the ttl can tell "there before it" (a loaded machine can take longer).
      if (Date.now() - before < 200) t.same(read, status, 'there before the ttl');
      else t.comment('the write and the read took longer than the ttl here: "there before the ttl" was not judged');
      await sleep(600);
      t.equal(await backend.get(status.id), null, 'gone after the ttl');
    },
  ],
  [
    'a group counts its members and returns results in member order, however they were recorded',
    async (t, backend) => {
      const groupId = uniqueName('group');
      const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()];
      await backend.initGroup(groupId, [a, b, c]);
      t.same(await backend.getGroup(groupId), {
        id: groupId,
        memberIds: [a, b, c],
        expected: 3,
        completed: 0,
        results: [null, null, null],
      });
      const statusC = makeStatus({ id: c, result: 'c' });
      const statusA = makeStatus({ id: a, result: 'a' });
      const statusB = makeStatus({ id: b, state: 'failed', error: { type: 'Error', message: 'b failed' } });
      t.same(await backend.recordGroupResult(groupId, statusC), { completed: 1, expected: 3 });
      t.same(await backend.recordGroupResult(groupId, statusA), { completed: 2, expected: 3 });
      t.same(await backend.recordGroupResult(groupId, statusC), { completed: 2, expected: 3 }, 'recording a member again counts once');
      const partial = await backend.getGroup(groupId);
      t.same(partial?.results, [statusA, null, statusC], 'null where a member has not recorded');
      t.same(await backend.recordGroupResult(groupId, statusB), { completed: 3, expected: 3 });
      const full = await backend.getGroup(groupId);
      t.same(full?.results, [statusA, statusB, statusC], 'member order, not recording order');
      t.equal(full?.completed, 3);
    },
  ],
  [
    'an unknown group is null, and initGroup again starts the group over',
    async (t, backend) => {
      t.equal(await backend.getGroup(uniqueName('group')), null);
      const groupId = uniqueName('group');
      const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()];
      await backend.initGroup(groupId, [a, b, c]);
      await backend.recordGroupResult(groupId, makeStatus({ id: a }));
      await backend.initGroup(groupId, [b, c]);
      t.same(await backend.getGroup(groupId), { id: groupId, memberIds: [b, c], expected: 2, completed: 0, results: [null, null] });
    },
  ],
  [
    "a chord's pending record gives way to its callback's states and to the chord's failure",
    async (t, backend) => {
      const fired = uuidv7();
      await backend.set([makeStatus({ id: fired, state: 'pending' })]);
      await backend.set([makeStatus({ id: fired, state: 'queued' })]);
      t.equal((await backend.get(fired))?.state, 'queued', 'the callback enqueued');
      const failed = uuidv7();
      await backend.set([makeStatus({ id: failed, state: 'pending' })]);
      await backend.set([
        makeStatus({ id: failed, state: 'failed', error: { type: 'ChordMemberFailedError', message: 'member 2 of 3 failed' } }),
      ]);
      t.equal((await backend.get(failed))?.state, 'failed', 'the chord failed without its callback');
    },
  ],
  [
    'a chord is claimed exactly once, even by concurrent callers',
    async (t, backend) => {
      const chordId = uniqueName('chord');
      t.same(await backend.claimChord(chordId, { claimer: 'first' }), { won: true }, 'the first claim wins');
      t.same(
        await backend.claimChord(chordId, { claimer: 'second' }),
        { won: false, fired: false, claimer: 'first' },
        'the second loses, told who holds it',
      );
      t.same(
        await backend.claimChord(chordId),
        { won: false, fired: false, claimer: 'first' },
        'and so does every later one: without a lease, for good',
      );
      const contested = uniqueName('chord');
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => backend.claimChord(contested, { leaseMs: 60_000, claimer: `c${i}` })),
      );
      t.equal(claims.filter((claim) => claim.won).length, 1, 'one of ten concurrent claims wins');
    },
  ],
  [
    'a chord claim whose lease ended unfired is taken over, once',
    async (t, backend) => {
      // The second claim must come while the first one's lease lives; a stall of the machine past it makes the case run again
      // with a longer lease.
      await retryOnStall(t, 300, async (leaseMs, lastTry) => {
        const chordId = uniqueName('chord');
        const before = Date.now();
        t.same(await backend.claimChord(chordId, { leaseMs, claimer: 'dead' }), { won: true });
        const lost = await backend.claimChord(chordId, { leaseMs, claimer: 'waiting' });
        if (lost.won && Date.now() - before >= leaseMs - CLOCK_SLACK_MS && !lastTry) return STALLED;
        t.match(lost, { won: false, fired: false, claimer: 'dead' }, 'a live lease holds');
        const leaseEndsAt = lost.won ? 0 : (lost.leaseEndsAt ?? 0);
        // Dated by the store's clock, which is this machine's in the tests.
        t.ok(
          leaseEndsAt >= before + leaseMs - 1_000 && leaseEndsAt <= Date.now() + leaseMs + 1_000,
          `the loser learns when the lease ends (${leaseEndsAt - before}ms after the claim)`,
        );
        await sleep(Math.max(0, leaseEndsAt - Date.now()) + 50);
        const takeovers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => backend.claimChord(chordId, { leaseMs: 60_000, claimer: `rescuer${i}` })),
        );
        const won = takeovers.filter((claim) => claim.won);
        t.equal(won.length, 1, 'one of ten concurrent callers takes it over');
        t.same(won[0], { won: true, takenOverFrom: 'dead' }, 'naming the claimer it took over from');
        const winner = takeovers.indexOf(won[0]!);
        t.match(
          await backend.claimChord(chordId, { leaseMs: 300 }),
          { won: false, fired: false, claimer: `rescuer${winner}` },
          'the new holder has a lease of its own',
        );
      });
    },
  ],
  [
    'a fired chord claim is never taken over',
    async (t, backend) => {
      const chordId = uniqueName('chord');
      t.same(await backend.claimChord(chordId, { leaseMs: 100, claimer: 'firer' }), { won: true });
      await backend.chordFired(chordId);
      t.same(
        await backend.claimChord(chordId, { leaseMs: 100, claimer: 'early' }),
        { won: false, fired: true, claimer: 'firer' },
        'fired: nothing to wait for',
      );
      await sleep(250);
      t.same(
        await backend.claimChord(chordId, { leaseMs: 100, claimer: 'late' }),
        { won: false, fired: true, claimer: 'firer' },
        'nor taken over once the lease has ended',
      );
      const unclaimed = uniqueName('chord');
      await backend.chordFired(unclaimed);
      t.match(
        await backend.claimChord(unclaimed, { leaseMs: 100 }),
        { won: false, fired: true },
        'marking fired also holds a chord nobody claimed (an expired claim)',
      );
    },
  ],
  [
    'worker heartbeats are listed until their ttl runs out',
    async (t, backend) => {
      // Each listing must come while the beats it expects live; a stall of the machine past their ttl makes the case run
      // again with a longer one.
      await retryOnStall(t, 300, async (ttlMs, lastTry) => {
        const stalled = (since: number) => Date.now() - since >= ttlMs - CLOCK_SLACK_MS && !lastTry;
        const first = makeBeat();
        const second = makeBeat({ queues: ['default'] });
        const beatAt = Date.now();
        await backend.heartbeat(first, ttlMs);
        await backend.heartbeat(second, ttlMs);
        const listed = await listedBeats(backend, [first.workerId, second.workerId]);
        if (listed.length < 2 && stalled(beatAt)) return STALLED;
        t.same(
          listed.sort((x, y) => (x.workerId < y.workerId ? -1 : 1)),
          [first, second].sort((x, y) => (x.workerId < y.workerId ? -1 : 1)),
          'both listed with every field',
        );
        const later = { ...first, at: Date.now(), stats: { ...first.stats, processed: 9 } };
        const laterAt = Date.now();
        await backend.heartbeat(later, ttlMs);
        const again = await listedBeats(backend, [first.workerId]);
        if (again.length === 0 && stalled(laterAt)) return STALLED;
        t.same(again, [later], 'a new beat replaces the old one');
        await sleep(Math.max(0, laterAt + ttlMs - Date.now()) + 400);
        t.same(await listedBeats(backend, [first.workerId, second.workerId]), [], 'gone after the ttl');
      });
    },
  ],
];

/** The ResultBackend contract: states, watches, TTLs, groups, the chord barrier and heartbeats. */
export async function resultBackendContract(t: Test, factory: ContractFactory<ResultBackend>): Promise<void> {
  await runContract(t, 'ResultBackend contract', factory, cases);
}
