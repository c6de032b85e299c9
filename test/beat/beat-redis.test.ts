import t from 'tap';
import { beat, Beat, readScheduleFile, ScheduleEditor } from '../../plugins/beat/index.js';
import { redis } from '../../plugins/redis/index.js';
import { SCHEDULE_ID_HEADER, SCHEDULED_FOR_HEADER, scheduleEntryFor } from '../../plugins/beat/schedule-rules.js';
import type { Envelope } from '../../sdk/envelope.js';
import { Stem } from '../../sdk/index.js';
import tasks from '../../fixtures/tasks.js';
import { repoRoot } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';

t.test('Beat on Redis', async (t) => {
  if (!(await requireRedis(t))) return;

  t.test('two Beats on one Redis enqueue each every:1s firing exactly once', async (t) => {
    const namespace = testNamespace('beat-two');
    t.teardown(() => deleteNamespace(namespace));
    const published: Envelope[] = [];
    const stems: Stem[] = [];
    t.teardown(async () => {
      for (const stem of stems) await stem.close();
    });
    for (let i = 0; i < 2; i++) {
      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace }), beat({ tick: '100ms' })] });
      stem.hooks.published.tapPromise('test', async (envelopes) => void published.push(...envelopes));
      stems.push(stem);
    }
    await stems[0]!
      .service('scheduleStore')
      .upsert(scheduleEntryFor({ id: 'every-second', task: 'beat.count', schedule: 'every:1s' }, Date.now()));
    await waitFor(() => published.length >= 4, 'four firings', 60_000);
    for (const stem of stems) await stem.close();

    const slots = published.map((envelope) => envelope.headers[SCHEDULED_FOR_HEADER]!);
    t.ok(new Set(slots).size >= 4, `${new Set(slots).size} slots fired`);
    t.equal(new Set(slots).size, slots.length, 'each slot was enqueued once');
    t.ok(published.every((envelope) => envelope.headers[SCHEDULE_ID_HEADER] === 'every-second'));
  });

  t.test('fixtures/schedules.json applies, lists, and fires through a real worker', async (t) => {
    const namespace = testNamespace('beat-fixtures');
    t.teardown(() => deleteNamespace(namespace));
    const stem = await Stem.create({ tasks, plugins: [redis({ url: REDIS_URL, namespace })] });
    t.teardown(() => stem.close());
    const store = stem.service('scheduleStore');
    const editor = new ScheduleEditor(store);
    await editor.apply(await editor.plan(await readScheduleFile(`${repoRoot}fixtures/schedules.json`)));
    const entries = await store.list();
    t.same(
      entries.map((entry) => entry.id),
      ['nightly-report', 'resize-uploads', 'weekday-receipts'],
    );
    t.ok(entries.every((entry) => entry.enabled && entry.nextRunAt !== undefined && entry.version === 1));

    // A clock a week ahead makes every entry due now; no jitter so the worker need not wait.
    const weekLater = Date.now() + 7 * 86_400_000;
    const reports = await new Beat(stem, { now: () => weekLater, random: () => 0 }).tick();
    t.same(
      reports.map((report) => report.outcome),
      ['enqueued', 'enqueued', 'enqueued'],
    );
    await stem.worker({ queues: ['default', 'reports', 'emails'] }).start();
    const results = await Promise.all(reports.map((report) => stem.handle(report.taskId!).result({ timeoutMs: 60_000 })));
    t.match(
      Object.fromEntries(reports.map((report, i) => [report.scheduleId, results[i]])),
      {
        'nightly-report': { customerId: 42 },
        'resize-uploads': { file: 'uploads/latest.png', resized: true },
        'weekday-receipts': { to: 'finance@example.com' },
      },
      'each entry ran its task with its args',
    );
    t.ok(
      (await store.list()).every((entry) => entry.totalRuns === 1 && entry.lastRunAt === weekLater),
      'each run is recorded',
    );
  });
});
