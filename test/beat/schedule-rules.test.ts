import t from 'tap';
import {
  firingFor,
  firingTaskId,
  firstRunAt,
  InvalidScheduleError,
  nextRunAfter,
  nextRunAfterFiring,
  parseScheduleSpec,
  scheduleEntryFor,
  upcomingRuns,
  validateScheduleDefinition,
  validateScheduleDefinitions,
} from '../../plugins/beat/schedule-rules.js';
import { uuidv7Time } from '../../sdk/id.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

t.test('a 5-field cron expression fires at its next minute slot, strictly after the given time', async (t) => {
  const rule = parseScheduleSpec('*/5 * * * *');
  t.equal(iso(nextRunAfter(rule, at('2030-01-01T00:02:30Z'))), '2030-01-01T00:05:00.000Z');
  t.equal(iso(nextRunAfter(rule, at('2030-01-01T00:05:00Z'))), '2030-01-01T00:10:00.000Z', 'a slot equal to the time is not "after" it');
  t.same(upcomingRuns(rule, at('2030-01-01T00:00:00Z'), 3).map(iso), [
    '2030-01-01T00:05:00.000Z',
    '2030-01-01T00:10:00.000Z',
    '2030-01-01T00:15:00.000Z',
  ]);
});

t.test('a 6-field cron expression has seconds first', async (t) => {
  const rule = parseScheduleSpec('*/15 * * * * *');
  t.same(upcomingRuns(rule, at('2030-01-01T00:00:01Z'), 3).map(iso), [
    '2030-01-01T00:00:15.000Z',
    '2030-01-01T00:00:30.000Z',
    '2030-01-01T00:00:45.000Z',
  ]);
});

t.test('a cron expression is read in its time zone (UTC by default), across a DST change', async (t) => {
  t.equal(iso(nextRunAfter(parseScheduleSpec('0 2 * * *'), at('2030-01-01T00:00:00Z'))), '2030-01-01T02:00:00.000Z', 'UTC by default');
  const paris = parseScheduleSpec('0 2 * * *', 'Europe/Paris');
  t.equal(iso(nextRunAfter(paris, at('2030-01-01T00:00:00Z'))), '2030-01-01T01:00:00.000Z', '02:00 in Paris is 01:00 UTC in winter');
  t.equal(iso(nextRunAfter(paris, at('2030-06-30T12:00:00Z'))), '2030-07-01T00:00:00.000Z', '02:00 in Paris is 00:00 UTC in summer');
  const newYork = parseScheduleSpec('0 9 * * *', 'America/New_York');
  t.same(
    upcomingRuns(newYork, at('2030-03-09T00:00:00Z'), 2).map(iso),
    ['2030-03-09T14:00:00.000Z', '2030-03-10T13:00:00.000Z'],
    'the UTC time moves by an hour when the clocks do',
  );
});

t.test('every: slots are counted from the epoch, or from startAt', async (t) => {
  for (const spec of ['every:30s', { every: 30_000 }, { every: '30s' }] as const) {
    t.equal(iso(nextRunAfter(parseScheduleSpec(spec), at('2030-01-01T00:00:10Z'))), '2030-01-01T00:00:30.000Z', JSON.stringify(spec));
  }
  const rule = parseScheduleSpec('every:5m');
  const window = { startAt: at('2030-01-01T00:01:00Z') };
  t.equal(iso(nextRunAfter(rule, at('2029-12-31T00:00:00Z'), window)), '2030-01-01T00:01:00.000Z', 'the first slot is startAt itself');
  t.equal(iso(nextRunAfter(rule, at('2030-01-01T00:02:00Z'), window)), '2030-01-01T00:06:00.000Z', 'then startAt + n × interval');
});

t.test('an at: schedule fires once, even when its time passed before it was applied', async (t) => {
  const rule = parseScheduleSpec({ at: '2030-01-01T09:00:00+02:00' });
  t.equal(iso(firstRunAt(rule, at('2029-01-01T00:00:00Z'))), '2030-01-01T07:00:00.000Z');
  t.equal(
    iso(firstRunAt(rule, at('2031-01-01T00:00:00Z'))),
    '2030-01-01T07:00:00.000Z',
    'a past time that never fired is still due (once)',
  );
  t.equal(firstRunAt(rule, at('2031-01-01T00:00:00Z'), {}, at('2030-01-01T07:00:01Z')), undefined, 'after it fired, never again');
  t.equal(nextRunAfterFiring(rule, at('2030-01-01T07:00:00Z'), at('2030-01-01T07:00:01Z')), undefined, 'no next run after its firing');
});

t.test('startAt and endAt bound the firings', async (t) => {
  const rule = parseScheduleSpec('0 * * * *');
  const window = { startAt: at('2030-01-01T10:30:00Z'), endAt: at('2030-01-01T12:00:00Z') };
  t.same(
    upcomingRuns(rule, at('2030-01-01T00:00:00Z'), 10, window).map(iso),
    ['2030-01-01T11:00:00.000Z', '2030-01-01T12:00:00.000Z'],
    'nothing before startAt, endAt included, nothing after',
  );
  t.equal(nextRunAfter(rule, at('2030-01-01T12:00:00Z'), window), undefined, 'after endAt there is no next run');
  const once = parseScheduleSpec({ at: '2030-01-01T09:00:00Z' });
  t.equal(firstRunAt(once, 0, { endAt: at('2030-01-01T08:00:00Z') }), undefined, 'an at: outside the window never fires');
});

t.test('after downtime, missed slots collapse into one firing and the next run is the next future slot', async (t) => {
  const rule = parseScheduleSpec('every:1s');
  const missedFrom = at('2030-01-01T00:00:01Z');
  const backAt = at('2030-01-01T00:00:06.400Z');
  t.equal(
    iso(nextRunAfterFiring(rule, missedFrom, backAt)),
    '2030-01-01T00:00:07.000Z',
    'five missed slots, one catch-up firing, then 00:07',
  );
  const cron = parseScheduleSpec('*/5 * * * *');
  t.equal(iso(nextRunAfterFiring(cron, at('2030-01-01T00:05:00Z'), at('2030-01-01T03:02:00Z'))), '2030-01-01T03:05:00.000Z');
  t.equal(
    iso(nextRunAfterFiring(cron, at('2030-01-01T00:05:00Z'), at('2030-01-01T00:05:00.020Z'))),
    '2030-01-01T00:10:00.000Z',
    'a firing on time moves to the following slot',
  );
});

t.test('a firing carries the schedule headers, the entry options, and jitter as a delay', async (t) => {
  const entry = scheduleEntryFor(
    {
      id: 'nightly',
      task: 'reports.generate',
      schedule: '0 2 * * *',
      args: { customerId: 1 },
      headers: { tenant: 'acme' },
      queue: 'reports',
      priority: 7,
      jitterMs: 5_000,
    },
    at('2030-01-01T00:00:00Z'),
  );
  t.equal(iso(entry.nextRunAt), '2030-01-01T02:00:00.000Z');
  t.match(entry, { enabled: true, version: 0, totalRuns: 0 });
  const firing = firingFor(entry, entry.nextRunAt!, 1_234);
  t.same(firing, {
    scheduleId: 'nightly',
    task: 'reports.generate',
    args: { customerId: 1 },
    scheduledFor: entry.nextRunAt,
    options: {
      id: firingTaskId('nightly', entry.nextRunAt!),
      headers: { tenant: 'acme', 'stem-schedule-id': 'nightly', 'stem-scheduled-for': '2030-01-01T02:00:00.000Z' },
      queue: 'reports',
      priority: 7,
      notBefore: 1_234,
    },
  });
  t.notOk('notBefore' in firingFor(entry, entry.nextRunAt!, 0).options, 'no jitter, no delay');
});

t.test("a firing's task id derives from the schedule id and the slot, UUID-shaped and sorted by slot", async (t) => {
  const slot = at('2030-01-01T02:00:00Z');
  const id = firingTaskId('nightly', slot);
  t.equal(id, firingTaskId('nightly', slot), 'the same slot gives the same id, in any process');
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a version-8 UUID');
  t.equal(uuidv7Time(id), slot, 'its first 48 bits are the slot');
  t.not(firingTaskId('nightly', slot + 60_000), id, 'another slot is another task');
  t.not(firingTaskId('nightly-2', slot), id, 'another schedule is another task');
  t.ok(firingTaskId('nightly', slot) < firingTaskId('nightly', slot + 1), 'ids sort by slot');
  t.equal(firingFor(scheduleEntryFor({ id: 'nightly', task: 'x', schedule: '0 2 * * *' }, 0), slot).options.id, id, 'a firing carries it');
});

t.test('bad definitions are refused with the entry and the field named', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'a bad cron expression',
      { id: 'a', task: 'x', schedule: '61 * * * *' },
      /entry "a": schedule: "61 \* \* \* \*" is not a valid cron expression/,
    ],
    ['a cron expression with 3 fields', { id: 'a', task: 'x', schedule: '* * *' }, /entry "a": schedule: .*5 fields/],
    ['a cron expression with 7 fields', { id: 'a', task: 'x', schedule: '* * * * * * *' }, /entry "a": schedule:/],
    ['an unknown key', { id: 'a', task: 'x', schedule: 'every:1m', cron: '* * * * *' }, /entry "a": cron: unknown key/],
    ['an interval under 1s', { id: 'a', task: 'x', schedule: 'every:500ms' }, /entry "a": schedule: .*shorter than the 1s minimum/],
    ['an interval object under 1s', { id: 'a', task: 'x', schedule: { every: 10 } }, /entry "a": schedule: .*1s minimum/],
    [
      'jitter longer than the interval',
      { id: 'a', task: 'x', schedule: 'every:10s', jitterMs: 20_000 },
      /entry "a": jitterMs: 20000ms is longer than the 10000ms between firings/,
    ],
    [
      'jitter longer than a cron gap',
      { id: 'a', task: 'x', schedule: '* * * * *', jitterMs: '2m' },
      /entry "a": jitterMs: 120000ms is longer than the 60000ms/,
    ],
    ['a missing task', { id: 'a', schedule: 'every:1m' }, /entry "a": task: missing/],
    ['a missing id', { task: 'x', schedule: 'every:1m' }, /entry #1: id: missing/],
    ['a missing schedule', { id: 'a', task: 'x' }, /entry "a": schedule: missing/],
    [
      'an unknown time zone',
      { id: 'a', task: 'x', schedule: '0 2 * * *', timezone: 'Mars/Olympus' },
      /entry "a": timezone: "Mars\/Olympus" is not an IANA time zone/,
    ],
    [
      'a time zone on an interval',
      { id: 'a', task: 'x', schedule: 'every:1m', timezone: 'UTC' },
      /entry "a": timezone: only a cron schedule/,
    ],
    [
      'an at: time without a zone',
      { id: 'a', task: 'x', schedule: { at: '2030-01-01T09:00:00' } },
      /entry "a": schedule.at: .*no time zone/,
    ],
    ['a priority out of range', { id: 'a', task: 'x', schedule: 'every:1m', priority: 12 }, /entry "a": priority: 12 is out of range/],
    [
      'endAt before startAt',
      { id: 'a', task: 'x', schedule: 'every:1m', startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' },
      /entry "a": endAt: .*not after startAt/,
    ],
    ['headers that are not strings', { id: 'a', task: 'x', schedule: 'every:1m', headers: { n: 1 } }, /entry "a": headers:/],
  ];
  for (const [name, raw, message] of cases) {
    t.throws(() => validateScheduleDefinition(raw, { file: 'schedules.json', index: 0 }), message, name);
    try {
      validateScheduleDefinition(raw, { file: 'schedules.json', index: 0 });
    } catch (error) {
      t.ok(
        error instanceof InvalidScheduleError && error.exitCode === 64 && error.message.startsWith('schedules.json: '),
        `${name}: exit code 64, file named`,
      );
    }
  }
});

t.test('a list with an id used twice, or any bad entry, is refused whole', async (t) => {
  t.throws(
    () =>
      validateScheduleDefinitions(
        [
          { id: 'a', task: 'x', schedule: 'every:1m' },
          { id: 'a', task: 'y', schedule: 'every:2m' },
        ],
        'schedules.yaml',
      ),
    /schedules\.yaml: entry "a": id: used twice \(entries #1 and #2\)/,
  );
  t.throws(
    () =>
      validateScheduleDefinitions([
        { id: 'ok', task: 'x', schedule: 'every:1m' },
        { id: 'b', task: 'x', schedule: 'nope' },
        { id: 'c', task: 'x', schedule: 'every:1ms' },
      ]),
    /entry "b": schedule: .*\(and 1 more problem: "c" schedule\)/,
    'every problem is counted in the one-line message',
  );
  t.same(
    validateScheduleDefinitions([{ id: 'ok', task: 'x', schedule: { every: '5m' }, startAt: '2030-01-01T00:00:00Z', jitterMs: '10s' }]),
    [{ id: 'ok', task: 'x', schedule: { every: 300_000 }, startAt: at('2030-01-01T00:00:00Z'), jitterMs: 10_000 }],
    'durations and times are normalised',
  );
});
