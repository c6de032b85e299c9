import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runInProcess } from '../cli/in-process.js';
import { runStem } from '../helpers/run-stem.js';

/**
 * The first command runs the real binary; the rest are one-shot commands that need no process of their
 * own, so they run in this test process through the binary's main(). memory://, not the CLI's SQLite
 * default, which would be a .stem/ in the repository shared by every test file.
 */
const cli = (args: string[]) => runInProcess(args, { env: { STEM_BROKER_URL: 'memory://' } });

async function scheduleFile(name: string, content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-schedule-'));
  const file = join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

t.test('stem schedule dry-run prints the next firings of a spec', async (t) => {
  const run = await runStem(['schedule', 'dry-run', '--spec', '*/5 * * * *', '--count', '5', '--from', '2030-01-01T00:00:00Z'], {
    env: { STEM_BROKER_URL: 'memory://' },
  });
  t.equal(run.code, 0, run.stderr);
  t.same(run.stdout.trim().split('\n'), [
    '2030-01-01T00:05:00.000Z',
    '2030-01-01T00:10:00.000Z',
    '2030-01-01T00:15:00.000Z',
    '2030-01-01T00:20:00.000Z',
    '2030-01-01T00:25:00.000Z',
  ]);

  const zoned = await cli([
    'schedule',
    'dry-run',
    '--spec',
    '0 9 * * 1-5',
    '--timezone',
    'America/New_York',
    '--count',
    '2',
    '--from',
    '2030-01-04T00:00:00Z',
    '--json',
  ]);
  t.equal(zoned.code, 0, zoned.stderr);
  t.same(JSON.parse(zoned.stdout), ['2030-01-04T14:00:00.000Z', '2030-01-07T14:00:00.000Z'], 'Friday 9:00 in New York, then Monday');

  const seconds = await cli(['schedule', 'dry-run', '--spec', 'every:30s', '--count', '2', '--from', '2030-01-01T00:00:10Z', '--json']);
  t.same(JSON.parse(seconds.stdout), ['2030-01-01T00:00:30.000Z', '2030-01-01T00:01:00.000Z']);

  const bad = await cli(['schedule', 'dry-run', '--spec', '61 * * * *']);
  t.equal(bad.code, 64);
  t.match(bad.stderr, /^stem: --spec: "61 \* \* \* \*" is not a valid cron expression/);
  const badZone = await cli(['schedule', 'dry-run', '--spec', '0 2 * * *', '--timezone', 'Mars/Base']);
  t.equal(badZone.code, 64);
  t.match(badZone.stderr, /^stem: --timezone: "Mars\/Base" is not an IANA time zone/);
});

t.test('stem schedule apply --dry-run shows what a file would add, and writes nothing', async (t) => {
  const run = await cli(['schedule', 'apply', 'fixtures/schedules.json', '--dry-run']);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /\+ added +nightly-report +reports\.generate +0 2 \* \* \* \(Europe\/Paris\)/);
  t.match(run.stdout, /\+ added +resize-uploads +media\.resize +every:5m/);
  t.match(run.stdout, /dry run: 3 added, 0 changed, 0 removed, 0 unchanged, 0 kept; nothing was written/);
  t.notMatch(run.stderr, /in memory/, 'a dry run does not warn about the memory store: it writes nothing');
});

t.test('a bad schedule file is refused with one line naming the file, the entry and the field (exit 64)', async (t) => {
  const entry = (overrides: Record<string, unknown>): Record<string, unknown> => ({
    id: 'report',
    task: 'reports.generate',
    schedule: '0 2 * * *',
    ...overrides,
  });
  const cases: Array<[string, string, unknown, RegExp]> = [
    [
      'a bad cron expression',
      'schedules.json',
      [entry({ schedule: '0 25 * * *' })],
      /entry "report": schedule: "0 25 \* \* \*" is not a valid cron expression/,
    ],
    [
      'an unknown key',
      'schedules.json',
      [entry({ every: '5m' })],
      /entry "report": every: unknown key; a schedule entry has id, task, schedule/,
    ],
    [
      'an interval under 1s',
      'schedules.json',
      { schedules: [entry({ schedule: 'every:200ms' })] },
      /entry "report": schedule: "every:200ms" is shorter than the 1s minimum/,
    ],
    [
      'jitter longer than the interval',
      'schedules.json',
      [entry({ schedule: 'every:30s', jitterMs: 60_000 })],
      /entry "report": jitterMs: 60000ms is longer than the 30000ms between firings/,
    ],
    ['a missing task', 'schedules.json', [{ id: 'report', schedule: 'every:5m' }], /entry "report": task: missing/],
    [
      'an id used twice',
      'schedules.json',
      [entry({}), entry({ task: 'media.resize' })],
      /entry "report": id: used twice \(entries #1 and #2\)/,
    ],
    ['unreadable JSON', 'schedules.json', '[\n  { "id": "report", }\n]', /schedules\.json: line 2, column \d+: not valid JSON/],
    ['unreadable YAML', 'schedules.yaml', '- id: report\n  task: [unclosed\n', /schedules\.yaml: line \d+, column \d+: not valid YAML/],
    [
      'a YAML key given twice',
      'schedules.yaml',
      '- id: report\n  id: again\n  task: x\n  schedule: every:1m\n',
      /schedules\.yaml: line 2, column \d+: not valid YAML \(Map keys must be unique/,
    ],
    ['an unknown top-level key', 'schedules.yaml', 'entries: []\n', /schedules\.yaml: unknown top-level key "entries"/],
  ];
  const runs = await Promise.all(
    cases.map(async ([, fileName, content]) => {
      const file = await scheduleFile(fileName, content);
      return { file, run: await cli(['schedule', 'apply', file]) };
    }),
  );
  for (const [i, [name, , , message]] of cases.entries()) {
    const { file, run } = runs[i]!;
    t.equal(run.code, 64, `${name}: exit 64`);
    t.match(run.stderr, message, name);
    t.ok(run.stderr.startsWith(`stem: ${file}`), `${name}: the file is named first`);
    t.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line`);
    t.equal(run.stdout, '', `${name}: nothing applied`);
  }
  const missing = await cli(['schedule', 'apply', 'config/no-such-file.json']);
  t.equal(missing.code, 64);
  t.match(missing.stderr, /^stem: config\/no-such-file\.json: cannot read the schedule file \(no such file\)/);
});

t.test('a YAML schedule file with { schedules: [...] } applies like JSON', async (t) => {
  const file = await scheduleFile(
    'schedules.yml',
    'schedules:\n  - id: resize\n    task: media.resize\n    schedule: every:5m\n    args: { file: a.png }\n  - id: nightly\n    task: reports.generate\n    schedule: "0 2 * * *"\n    timezone: Europe/Paris\n',
  );
  const run = await cli(['schedule', 'apply', file, '--dry-run', '--json']);
  t.equal(run.code, 0, run.stderr);
  t.same(JSON.parse(run.stdout), { dryRun: true, added: ['resize', 'nightly'], changed: [], removed: [], unchanged: [], kept: [] });
});

t.test('stem schedule remove refuses without --yes when there is no terminal to ask on', async (t) => {
  const run = await cli(['schedule', 'remove', 'anything']);
  t.equal(run.code, 64);
  t.match(run.stderr, /no schedule entry "anything"/, 'an unknown id is a usage error');
});

t.test('every schedule and beat command documents itself with an example', async (t) => {
  const commands = [
    ['schedule', 'apply'],
    ['schedule', 'list'],
    ['schedule', 'remove'],
    ['schedule', 'enable'],
    ['schedule', 'disable'],
    ['schedule', 'dry-run'],
    ['beat', 'start'],
  ];
  const runs = await Promise.all(commands.map((command) => cli([...command, '--help'])));
  for (const [i, command] of commands.entries()) {
    const run = runs[i]!;
    t.equal(run.code, 0, command.join(' '));
    t.match(run.stdout, /Examples/, `${command.join(' ')} --help has examples`);
  }
});
