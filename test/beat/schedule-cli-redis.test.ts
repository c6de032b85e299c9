import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { SCHEDULED_FOR_HEADER } from '../../plugins/beat/schedule-rules.js';
import { Stem } from '../../sdk/index.js';
import tasks from '../../fixtures/tasks.js';
import { runInProcess } from '../cli/in-process.js';
import { repoRoot, runStem, type StemRun } from '../helpers/run-stem.js';
import { sleep, uniqueName, waitFor } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';

// Chained CLI processes and Beats running for seconds: more than the default per-file limit.
t.setTimeout(600_000);

/** A stem.config.ts putting every service on the test Redis under `namespace`, with the fixture tasks. */
async function redisConfig(namespace: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-beat-cli-'));
  const file = join(dir, 'stem.config.mts'); // .mts: ESM outside a "type": "module" package
  const module = (path: string): string => JSON.stringify(pathToFileURL(join(repoRoot, path)).href);
  await writeFile(
    file,
    [
      `import { redis } from ${module('plugins/redis/index.ts')};`,
      `import tasks from ${module('fixtures/tasks.ts')};`,
      `export default { tasks, plugins: [redis({ url: ${JSON.stringify(REDIS_URL)}, namespace: ${JSON.stringify(namespace)} })] };`,
    ].join('\n'),
  );
  return file;
}

async function scheduleFile(content: unknown, name = 'schedules.json'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-beat-file-'));
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(content, null, 2));
  return file;
}

/** A running `stem beat start`: its output so far, and a way to stop it with SIGTERM. */
interface BeatProcess {
  output(): string;
  stop(): Promise<number>;
}

function startBeat(args: string[]): BeatProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/stem.js'), 'beat', 'start', ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1' },
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return {
    output: () => stdout,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The slots (ISO) a Beat process reported enqueuing for `id`. */
function enqueuedSlots(output: string, id: string): string[] {
  return [...output.matchAll(new RegExp(`enqueued ${id} \\(\\S+\\) for (\\S+) as `, 'g'))].map((match) => match[1]!);
}

function listJson(run: StemRun): Array<Record<string, unknown>> {
  if (run.code !== 0) throw new Error(`stem schedule list failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Array<Record<string, unknown>>;
}

t.test('the schedule CLI on Redis', async (t) => {
  if (!(await requireRedis(t))) return;

  t.test('apply (with a dry-run diff and --prune), list --json, disable, enable and remove chain across processes', async (t) => {
    const namespace = testNamespace('schedule-cli');
    t.teardown(() => deleteNamespace(namespace));
    const config = await redisConfig(namespace);
    // The first command runs the real binary; the others run in this test process through the binary's
    // main() (each its own Stem and connections, as a separate process would have), saving a node start-up each.
    const stem = (...args: string[]): Promise<StemRun> => runInProcess([...args, '--config', config]);

    const dryRun = await runStem(['schedule', 'apply', 'fixtures/schedules.json', '--dry-run', '--config', config]);
    t.equal(dryRun.code, 0, dryRun.stderr);
    t.match(dryRun.stdout, /dry run: 3 added/);
    t.same(listJson(await stem('schedule', 'list', '--json')), [], 'a dry run writes nothing');

    const applied = await stem('schedule', 'apply', 'fixtures/schedules.json');
    t.equal(applied.code, 0, applied.stderr);
    t.match(applied.stdout, /applied: 3 added, 0 changed, 0 removed/);
    const listed = listJson(await stem('schedule', 'list', '--json'));
    t.same(
      listed.map((entry) => entry.id),
      ['nightly-report', 'resize-uploads', 'weekday-receipts'],
    );
    t.match(listed[0], {
      id: 'nightly-report',
      task: 'reports.generate',
      schedule: '0 2 * * *',
      timezone: 'Europe/Paris',
      enabled: true,
      lastRunAt: null,
      totalRuns: 0,
      version: 1,
    });
    t.match(String(listed[0]!.nextRunAt), /^\d{4}-\d\d-\d\dT(00|01):00:00\.000Z$/, 'the next run is 02:00 in Paris, as an ISO time');
    const table = await stem('schedule', 'list');
    t.match(table.stdout, /id.*task.*schedule.*next run.*last run.*enabled/);
    t.match(table.stdout, /resize-uploads.*media\.resize.*every:5m/);

    const again = await stem('schedule', 'apply', 'fixtures/schedules.json');
    t.match(again.stdout, /applied: 0 added, 0 changed, 0 removed, 3 unchanged/, 'applying the same file again changes nothing');

    const revised = await scheduleFile([
      {
        id: 'nightly-report',
        task: 'reports.generate',
        schedule: '0 3 * * *',
        timezone: 'Europe/Paris',
        args: { customerId: 42 },
        jitterMs: 30_000,
      },
      { id: 'resize-uploads', task: 'media.resize', schedule: 'every:5m', args: { file: 'uploads/latest.png' }, priority: 3 },
      { id: 'hourly-render', task: 'reports.render', schedule: '0 * * * *', args: { week: '2030-W01' } },
    ]);
    const diff = await stem('schedule', 'apply', revised, '--dry-run');
    t.equal(diff.code, 0, diff.stderr);
    t.match(diff.stdout, /\+ added +hourly-render +reports\.render +0 \* \* \* \*/);
    t.match(diff.stdout, /~ changed +nightly-report +schedule: "0 2 \* \* \*" → "0 3 \* \* \*"/);
    t.match(diff.stdout, /kept +weekday-receipts +\(not in the file; --prune removes it\)/);
    t.match(diff.stdout, /dry run: 1 added, 1 changed, 0 removed, 1 unchanged, 1 kept/);
    const pruneDiff = await stem('schedule', 'apply', revised, '--dry-run', '--prune', '--json');
    t.same(JSON.parse(pruneDiff.stdout), {
      dryRun: true,
      added: ['hourly-render'],
      changed: [{ id: 'nightly-report', fields: ['schedule'] }],
      removed: ['weekday-receipts'],
      unchanged: ['resize-uploads'],
      kept: [],
    });
    t.equal(listJson(await stem('schedule', 'list', '--json')).length, 3, 'dry runs left the store alone');

    const pruned = await stem('schedule', 'apply', revised, '--prune');
    t.match(pruned.stdout, /applied: 1 added, 1 changed, 1 removed, 1 unchanged, 0 kept/);
    const afterPrune = listJson(await stem('schedule', 'list', '--json'));
    t.same(
      afterPrune.map((entry) => entry.id),
      ['hourly-render', 'nightly-report', 'resize-uploads'],
    );
    t.match(afterPrune[1], { schedule: '0 3 * * *', version: 2 }, 'the changed entry was rewritten');
    t.match(String(afterPrune[1]!.nextRunAt), /T(01|02):00:00\.000Z$/, 'its next run follows the new schedule');

    const disabled = await stem('schedule', 'disable', 'resize-uploads');
    t.equal(disabled.code, 0, disabled.stderr);
    t.match(disabled.stdout, /disabled resize-uploads/);
    await stem('schedule', 'apply', revised);
    t.match(
      listJson(await stem('schedule', 'list', '--json')).find((entry) => entry.id === 'resize-uploads'),
      { enabled: false },
      'a file without `enabled` leaves a disabled entry disabled',
    );
    const enabled = await stem('schedule', 'enable', 'resize-uploads');
    t.match(enabled.stdout, /enabled resize-uploads \(next run \d{4}-/);
    t.match(
      listJson(await stem('schedule', 'list', '--json')).find((entry) => entry.id === 'resize-uploads'),
      { enabled: true },
    );
    const unknown = await stem('schedule', 'enable', 'no-such-entry');
    t.equal(unknown.code, 64);
    t.match(unknown.stderr, /^stem: no schedule entry "no-such-entry"/);

    const unconfirmed = await stem('schedule', 'remove', 'hourly-render');
    t.equal(unconfirmed.code, 64, 'removing without --yes and without a terminal is refused');
    t.match(unconfirmed.stderr, /^stem: schedule remove hourly-render: removing needs confirmation; pass --yes/);
    const removed = await stem('schedule', 'remove', 'hourly-render', '--yes');
    t.equal(removed.code, 0, removed.stderr);
    t.match(removed.stdout, /removed hourly-render/);
    t.same(
      listJson(await stem('schedule', 'list', '--json')).map((entry) => entry.id),
      ['nightly-report', 'resize-uploads'],
    );

    const bad = await scheduleFile([
      { id: 'fine', task: 'media.resize', schedule: 'every:1m' },
      { id: 'broken', task: 'media.resize', schedule: 'every:1m', jitterMs: 120_000 },
    ]);
    const refused = await stem('schedule', 'apply', bad, '--prune');
    t.equal(refused.code, 64);
    t.match(refused.stderr, /entry "broken": jitterMs: 120000ms is longer than the 60000ms between firings/);
    t.same(
      listJson(await stem('schedule', 'list', '--json')).map((entry) => entry.id),
      ['nightly-report', 'resize-uploads'],
      'nothing of a bad file was applied',
    );
  });

  t.test('--store redis://… picks the Redis schedule store by scheme', async (t) => {
    const id = uniqueName('store-flag');
    const file = await scheduleFile([{ id, task: 'media.resize', schedule: 'every:10m' }]);
    // A broker of its own (the CLI's default would be a .stem/stem.db in the repository, shared by test files).
    const broker = { STEM_BROKER_URL: 'memory://' };
    const applied = await runStem(['schedule', 'apply', file, '--store', REDIS_URL], { env: broker });
    t.equal(applied.code, 0, applied.stderr);
    t.notMatch(applied.stderr, /in memory/);
    t.ok(
      listJson(await runStem(['schedule', 'list', '--json', '--store', REDIS_URL], { env: broker })).some((entry) => entry.id === id),
      'a second process sees the entry',
    );
    const removed = await runStem(['schedule', 'remove', id, '--yes'], { env: { ...broker, STEM_SCHEDULE_STORE_URL: REDIS_URL } });
    t.equal(removed.code, 0, removed.stderr);
  });

  t.test('two `stem beat start` processes for 10 seconds enqueue each every:1s firing exactly once', async (t) => {
    const namespace = testNamespace('beat-processes');
    t.teardown(() => deleteNamespace(namespace));
    const config = await redisConfig(namespace);
    const file = await scheduleFile([{ id: 'every-second', task: 'media.resize', schedule: 'every:1s', args: { file: 'tick.png' } }]);
    const applied = await runStem(['schedule', 'apply', file, '--config', config]);
    t.equal(applied.code, 0, applied.stderr);

    const beats = [startBeat(['--config', config, '--tick', '200ms']), startBeat(['--config', config, '--tick', '200ms'])];
    await waitFor(() => beats.every((beat) => /started/.test(beat.output())), 'both Beats to start', 120_000);
    await sleep(10_000);
    // A stalled Beat fires once for the slots it missed (by design), so a loaded machine may see fewer than ten firings in
    // these 10 s: the Beats run on until eight were enqueued (a ceiling only Beats that stopped firing reach).
    const fired = () => beats.flatMap((beat) => enqueuedSlots(beat.output(), 'every-second')).length;
    await waitFor(() => fired() >= 8, 'eight firings', 60_000);
    const codes = await Promise.all(beats.map((beat) => beat.stop()));
    t.same(codes, [0, 0], 'both stop cleanly on SIGTERM');
    t.ok(beats.every((beat) => /SIGTERM received: beat stopped/.test(beat.output())));

    const slots = beats.flatMap((beat) => enqueuedSlots(beat.output(), 'every-second'));
    t.ok(slots.length >= 8, `${slots.length} firings`);
    t.equal(new Set(slots).size, slots.length, 'no slot was enqueued by both');

    // What reached the broker: a worker drains the queue and counts the tasks by their slot header.
    const stem = await Stem.create({ tasks, plugins: [redis({ url: REDIS_URL, namespace })] });
    t.teardown(() => stem.close());
    const ran: string[] = [];
    stem.signals.on('task-succeeded', ({ envelope }) => void ran.push(envelope.headers[SCHEDULED_FOR_HEADER]!));
    await stem.worker({ queues: ['default'] }).start();
    await waitFor(() => ran.length >= slots.length, `the worker to run ${slots.length} tasks`, 60_000);
    await sleep(500);
    t.equal(ran.length, slots.length, 'the broker held exactly one task per firing');
    t.same([...ran].sort(), [...slots].sort(), 'one task per slot');
    const entry = await stem.service('scheduleStore').get('every-second');
    t.equal(entry!.totalRuns, slots.length, 'the store counted each firing once');
  });

  t.test('a Beat stopped for 5 seconds and restarted fires one catch-up firing, not five', async (t) => {
    const namespace = testNamespace('beat-restart');
    t.teardown(() => deleteNamespace(namespace));
    const config = await redisConfig(namespace);
    const file = await scheduleFile([{ id: 'restarted', task: 'media.resize', schedule: 'every:1s', args: { file: 'tick.png' } }]);
    t.equal((await runStem(['schedule', 'apply', file, '--config', config])).code, 0);

    const first = startBeat(['--config', config, '--tick', '200ms']);
    await waitFor(() => enqueuedSlots(first.output(), 'restarted').length >= 2, 'two firings', 60_000);
    t.equal(await first.stop(), 0);
    const before = enqueuedSlots(first.output(), 'restarted');
    await sleep(5_000);
    // Every slot up to now was missed; every later one is after the second Beat's start. (Taken when the test saw
    // 'started', a stall of this process counted regular firings as catch-ups.)
    const restartAt = Date.now();
    const second = startBeat(['--config', config, '--tick', '200ms']);
    await waitFor(() => /started/.test(second.output()), 'the second Beat to start', 120_000);
    await waitFor(() => enqueuedSlots(second.output(), 'restarted').length >= 3, 'three firings after the restart', 60_000);
    t.equal(await second.stop(), 0);

    const after = enqueuedSlots(second.output(), 'restarted').map(Date.parse);
    const lastBefore = Date.parse(before.at(-1)!);
    const catchUp = after.filter((slot) => slot <= restartAt);
    t.equal(catchUp.length, 1, 'one catch-up firing for the slots missed while stopped');
    t.equal(catchUp[0], lastBefore + 1_000, 'it stands for the first missed slot');
    t.ok(after[1]! - after[0]! >= 5_000, 'then the schedule resumes at the next future slot, skipping the missed ones');
  });
});
