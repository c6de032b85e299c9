import type { Test } from 'tap';
import type { ResultBackend, TaskPage, TaskQuery, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { UsageError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import { CLOCK_SLACK_MS, type CaseBody, type ContractFactory, retryOnStall, runContract, STALLED, sleep } from './support.js';

/** A backend that lists (the optional `listTasks`). */
type ListingBackend = ResultBackend & Required<Pick<ResultBackend, 'listTasks'>>;

function makeStatus(overrides: Partial<TaskStatus> = {}): TaskStatus {
  return { id: uuidv7(), state: 'succeeded', name: 'contract.list', queue: 'default', attempt: 0, updatedAt: Date.now(), ...overrides };
}

/** Every page of `query`, in order. */
async function allPages(backend: ListingBackend, query: TaskQuery): Promise<TaskPage[]> {
  const pages: TaskPage[] = [];
  let cursor: string | undefined;
  do {
    const page = await backend.listTasks({ ...query, cursor });
    pages.push(page);
    cursor = page.cursor;
  } while (cursor !== undefined && pages.length < 1_000);
  return pages;
}

const ids = (page: TaskPage): string[] => page.tasks.map((task) => task.id);

/** Newest updatedAt first, ties by id descending. */
function listingOrder(statuses: readonly TaskStatus[]): string[] {
  return [...statuses]
    .sort((a, b) => (a.updatedAt !== b.updatedAt ? b.updatedAt - a.updatedAt : a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((status) => status.id);
}

const cases: ReadonlyArray<readonly [string, CaseBody<ListingBackend>]> = [
  [
    'tasks are listed newest first, filtered by state, name, queue and time',
    async (t, backend) => {
      const base = Date.now() - 60_000;
      const statuses = [
        makeStatus({
          state: 'failed',
          name: 'mail.send',
          queue: 'mail',
          updatedAt: base + 1_000,
          error: { type: 'Error', message: 'smtp' },
        }),
        makeStatus({ state: 'failed', name: 'report.build', queue: 'reports', updatedAt: base + 2_000 }),
        makeStatus({ state: 'succeeded', name: 'mail.send', queue: 'mail', updatedAt: base + 3_000, result: 1 }),
        makeStatus({ state: 'queued', name: 'mail.send', queue: 'bulk', updatedAt: base + 4_000 }),
        makeStatus({ state: 'running', name: 'report.build', queue: 'reports', updatedAt: base + 5_000, workerId: 'w1' }),
        makeStatus({ state: 'cancelled', name: 'report.build', queue: 'mail', updatedAt: base + 6_000 }),
      ];
      await backend.set(statuses);
      const [failedMail, failedReport, succeededMail, queuedBulk, runningReport, cancelledReport] = statuses as [
        TaskStatus,
        TaskStatus,
        TaskStatus,
        TaskStatus,
        TaskStatus,
        TaskStatus,
      ];
      const all = await backend.listTasks({});
      t.same(ids(all), listingOrder(statuses), 'everything, newest first');
      t.equal(all.cursor, undefined, 'one page: no cursor');
      t.same(all.tasks.at(-1), failedMail, 'each task as get() reads it');
      t.same(ids(await backend.listTasks({ state: 'failed' })), [failedReport.id, failedMail.id], 'by state');
      t.same(
        ids(await backend.listTasks({ state: ['failed', 'cancelled'] })),
        [cancelledReport.id, failedReport.id, failedMail.id],
        'by any of several states',
      );
      t.same(ids(await backend.listTasks({ name: 'mail.send' })), [queuedBulk.id, succeededMail.id, failedMail.id], 'by name');
      t.same(ids(await backend.listTasks({ queue: 'mail' })), [cancelledReport.id, succeededMail.id, failedMail.id], 'by queue');
      t.same(
        ids(await backend.listTasks({ name: 'report.build', queue: 'reports' })),
        [runningReport.id, failedReport.id],
        'name and queue',
      );
      t.same(ids(await backend.listTasks({ state: 'failed', name: 'mail.send', queue: 'mail' })), [failedMail.id], 'all three');
      t.same(
        ids(await backend.listTasks({ since: base + 2_000, until: base + 4_000 })),
        [queuedBulk.id, succeededMail.id, failedReport.id],
        'a time range, both ends included',
      );
      t.same(ids(await backend.listTasks({ state: 'failed', since: base + 1_500 })), [failedReport.id], 'state and time');
      t.same((await backend.listTasks({ name: 'nobody.runs.this' })).tasks, [], 'no match: an empty page');
    },
  ],
  [
    'paging with the cursor shows each task exactly once, newest first, ties included',
    async (t, backend) => {
      const base = Date.now() - 10_000;
      // 23 tasks over 5 distinct times: pages must cut inside a run of equal updatedAt.
      const statuses = Array.from({ length: 23 }, (_, i) => makeStatus({ state: 'failed', updatedAt: base + (i % 5) }));
      await backend.set(statuses.slice(0, 10));
      await backend.set(statuses.slice(10));
      await backend.set([makeStatus({ state: 'succeeded' })]);
      const pages = await allPages(backend, { state: 'failed', limit: 4 });
      t.equal(pages.length, 6, '23 tasks in pages of 4');
      t.ok(
        pages.slice(0, -1).every((page) => page.tasks.length === 4 && page.cursor !== undefined),
        'full pages carry a cursor',
      );
      t.equal(pages.at(-1)!.cursor, undefined, 'the last page has none');
      t.same(pages.flatMap(ids), listingOrder(statuses), 'every task once, in order');
      const exact = await allPages(backend, { state: 'failed', limit: 23 });
      t.equal(exact.length, 1, 'a page that holds everything is the last');
    },
  ],
  [
    'a task is listed under its current state only, and a dropped older write changes nothing',
    async (t, backend) => {
      const id = uuidv7();
      const now = Date.now();
      await backend.set([makeStatus({ id, state: 'queued', updatedAt: now - 3 })]);
      t.same(ids(await backend.listTasks({ state: 'queued' })), [id], 'queued at first');
      await backend.set([makeStatus({ id, state: 'running', updatedAt: now - 2 })]);
      await backend.set([makeStatus({ id, state: 'succeeded', updatedAt: now - 1, result: 'ok' })]);
      t.same(ids(await backend.listTasks({ state: 'succeeded' })), [id], 'listed as succeeded');
      t.same((await backend.listTasks({ state: ['queued', 'running'] })).tasks, [], 'no longer as queued or running');
      // The producer's queued state arriving last (another connection) is older: dropped, index included.
      await backend.set([makeStatus({ id, state: 'queued', updatedAt: now })]);
      t.same(ids(await backend.listTasks({ state: 'succeeded' })), [id], 'still succeeded');
      t.same((await backend.listTasks({ state: 'queued' })).tasks, [], 'the dropped write is not listed');
      const all = await backend.listTasks({});
      t.same(ids(all), [id], 'listed once');
      t.equal(all.tasks[0]!.updatedAt, now - 1, 'at the time of the state that stands');
      // A new generation (a retry) moves it back to queued.
      await backend.set([makeStatus({ id, state: 'queued', generation: 1, updatedAt: now + 1 })]);
      t.same(ids(await backend.listTasks({ state: 'queued' })), [id], 'a retry lists it as queued again');
      t.same((await backend.listTasks({ state: 'succeeded' })).tasks, [], 'and no longer as succeeded');
    },
  ],
  [
    'expired results are not listed',
    async (t, backend) => {
      // The first listing must come while the short one lives; a stall of the machine past its ttl makes the case run again
      // with a longer one.
      // A try that stalled leaves its long-lived result behind, listed after this try's (newest first).
      const earlier: string[] = [];
      await retryOnStall(t, 300, async (ttlMs, lastTry) => {
        const short = makeStatus({ state: 'failed' });
        const kept = makeStatus({ state: 'failed', updatedAt: short.updatedAt - 1 });
        const setAt = Date.now();
        await backend.set([short], { ttlMs });
        await backend.set([kept], { ttlMs: 60_000 });
        const live = ids(await backend.listTasks({ state: 'failed' }));
        if (!live.includes(short.id) && Date.now() - setAt >= ttlMs - CLOCK_SLACK_MS && !lastTry) {
          earlier.unshift(kept.id);
          return STALLED;
        }
        t.same(live, [short.id, kept.id, ...earlier], 'both while they live');
        await sleep(Math.max(0, setAt + ttlMs - Date.now()) + 900);
        t.same(ids(await backend.listTasks({ state: 'failed' })), [kept.id, ...earlier], 'the expired one is gone');
        t.same(ids(await backend.listTasks({})), [kept.id, ...earlier], 'from every listing');
        t.same(ids(await backend.listTasks({ name: short.name, queue: short.queue })), [kept.id, ...earlier], 'by name and queue too');
      });
    },
  ],
  [
    'a failed state keeps the args and the envelope a retry needs, and lists them',
    async (t, backend) => {
      const failed = makeStatus({
        state: 'failed',
        args: { to: '<img src=x onerror=alert(1)>', n: [1, 2] },
        envelope: {
          id: 'x',
          name: 'contract.list',
          headers: { tenant: 'a' },
          queue: 'default',
          priority: 5,
          attempt: 2,
          maxRetries: 2,
          visibilityTimeoutMs: 30_000,
          createdAt: 1,
          meta: { 'stem.generation': 1 },
        },
      });
      failed.envelope!.id = failed.id;
      await backend.set([failed]);
      t.same(await backend.get(failed.id), failed, 'read back whole');
      t.same((await backend.listTasks({ state: 'failed' })).tasks, [failed], 'listed whole');
    },
  ],
  [
    'a bad limit, state or cursor is a UsageError',
    async (t, backend) => {
      await t.rejects(backend.listTasks({ limit: 0 }), UsageError);
      await t.rejects(backend.listTasks({ limit: 501 }), UsageError);
      await t.rejects(backend.listTasks({ state: 'pending' }), UsageError);
      await t.rejects(backend.listTasks({ cursor: 'not-a-cursor' }), UsageError);
    },
  ],
];

/**
 * The optional listing contract (`ResultBackend.listTasks`): filters, newest-first paging with a
 * stable cursor, states that move, expiry. Run it only on backends that list.
 */
export async function taskListingContract(t: Test, factory: ContractFactory<ResultBackend>): Promise<void> {
  await runContract(t, 'task listing contract', factory as ContractFactory<ListingBackend>, cases);
}
