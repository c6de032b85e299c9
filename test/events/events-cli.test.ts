import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { postgres } from '../../plugins/postgres/index.js';
import { events } from '../../plugins/events/index.js';
import { redis } from '../../plugins/redis/index.js';
import { sqlite } from '../../plugins/sqlite/index.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { Stem, type StemEvent, type TaskEvent } from '../../sdk/index.js';
import { runStem, startStem } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { dropSchema, requirePostgres, testUrl as POSTGRES_URL, uniqueSchema } from '../postgres/postgres-harness.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { add, broken } from './event-tasks.js';

/** The events `stem events --json` printed so far, one JSON object a line (the stderr note is not JSON). */
function parsed(output: string): StemEvent[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as StemEvent);
}

const taskTypes = (events: StemEvent[], id: string) => events.filter((e) => (e as TaskEvent).taskId === id).map((e) => e.type);

/**
 * As users run it, in three processes: `stem events --json`, `stem worker start --events`, and this
 * one enqueueing. The add task's received, started, succeeded arrive in order with the worker's id;
 * the broken one's retried twice, then failed and dead-lettered; the worker's online and offline.
 */
async function crossProcess(t: Test, url: string, plugin: StemPlugin, label: string, textTail = false): Promise<void> {
  const queue = `events-${label}`;
  const workerId = `events-worker-${label}-${process.pid}`;
  const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '', STEM_WORKER_QUEUES: '' };
  const connection = ['--broker', url, '--backend', url];
  const tail = await startStem(['events', '--json', ...connection], { env });
  t.teardown(() => tail.stop('SIGKILL'));
  await tail.waitForOutput(/listening for events/, 120_000);
  // The human-readable tail, filtered to one task name and one type.
  const text = textTail ? await startStem(['events', '--task', 'ev.add', '--type', 'task-succeeded', ...connection], { env }) : undefined;
  if (text) {
    t.teardown(() => text.stop('SIGKILL'));
    await text.waitForOutput(/listening for events/, 120_000);
  }

  const worker = await startStem(
    ['worker', 'start', '--events', '--id', workerId, '--queues', queue, '--registry', 'test/events/event-tasks.ts', ...connection],
    { env },
  );
  t.teardown(() => worker.stop('SIGKILL'));
  await worker.waitForOutput(/ready on .*consuming/, 120_000);

  const stem = await Stem.create({ plugins: [plugin], tasks: [add, broken] });
  t.teardown(() => stem.close());
  const ok = await stem.enqueue(add, { a: 20, b: 22 }, { queue });
  const bad = await stem.enqueue(broken, {}, { queue });
  t.equal(await ok.result({ timeoutMs: 120_000 }), 42);

  await waitFor(() => taskTypes(parsed(tail.output()), bad.id).includes('task-dead-lettered'), 'the broken task dead-lettered', 120_000);
  await waitFor(() => taskTypes(parsed(tail.output()), ok.id).includes('task-succeeded'), 'the add task succeeded', 120_000);
  t.equal(await worker.stop('SIGTERM'), 0, 'the worker stopped cleanly');
  await waitFor(() => parsed(tail.output()).some((e) => e.type === 'worker-offline' && e.workerId === workerId), 'worker-offline', 120_000);
  t.equal(await tail.stop('SIGINT'), 0, 'stem events exits 0 on SIGINT');
  if (text) {
    t.equal(await text.stop('SIGTERM'), 0, 'stem events exits 0 on SIGTERM');
    const lines = text
      .output()
      .split('\n')
      .filter((line) => /^\d{4}-/.test(line));
    t.equal(lines.length, 1, `one line: only ev.add's task-succeeded\n${text.output()}`);
    t.match(lines[0], new RegExp(`task-succeeded +ev\\.add\\[${ok.id}\\] queue=${queue} attempt=0 runtime=\\d+ms worker=${workerId}$`));
  }

  const events = parsed(tail.output());
  t.same(taskTypes(events, ok.id), ['task-received', 'task-started', 'task-succeeded'], 'received, started, succeeded in order');
  t.match(
    events.find((e) => e.type === 'task-succeeded'),
    { workerId, taskId: ok.id, name: 'ev.add', queue, attempt: 0, runtimeMs: Number, at: Number },
    'with the worker id, queue, attempt and runtime',
  );
  t.same(
    taskTypes(events, bad.id).filter((type) => type !== 'task-received' && type !== 'task-started'),
    ['task-retried', 'task-retried', 'task-failed', 'task-dead-lettered'],
    'retried, retried, then failed and dead-lettered',
  );
  t.match(
    events.find((e) => e.type === 'task-failed'),
    { taskId: bad.id, attempt: 2, reason: 'max-retries-exhausted', error: { type: 'Error', message: 'broken on purpose' } },
  );
  const mine = events.filter((e) => e.workerId === workerId);
  t.equal(mine[0]?.type, 'worker-online', 'worker-online first');
  t.match(mine[0], { queues: [queue], hostname: String });
  t.equal(mine.at(-1)?.type, 'worker-offline', 'worker-offline last');
}

t.test('Redis: stem events --json sees a stem worker start --events process work', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('events');
  t.teardown(() => deleteNamespace(namespace));
  const url = `${REDIS_URL}?namespace=${namespace}`;
  await crossProcess(t, url, redis({ url: REDIS_URL, namespace }), 'redis', true);
});

t.test('Postgres: stem events --json sees a stem worker start --events process work', async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = uniqueSchema('events');
  t.teardown(() => dropSchema(schema));
  const url = `${POSTGRES_URL}?schema=${schema}`;
  await crossProcess(t, url, postgres({ url: POSTGRES_URL, schema }), 'postgres');
});

t.test('stem events refuses a broker with no event bus: SQLite (unsupported capability) and memory:// (this process only)', async (t) => {
  const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' };
  const dir = mkdtempSync(join(tmpdir(), 'stem-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sqlite = await runStem(['events', '--broker', `sqlite://${join(dir, 'stem.db')}`], { env });
  t.equal(sqlite.code, 64, sqlite.stderr);
  t.match(sqlite.stderr, /stem events needs the broker capability "events", which the Sqlite broker does not offer/);
  const memory = await runStem(['events', '--broker', 'memory://'], { env });
  t.equal(memory.code, 64, memory.stderr);
  t.match(memory.stderr, /the broker is memory:\/\/, which only this process sees/);
  const badType = await runStem(['events', '--broker', 'memory://', '--type', 'task-exploded'], { env });
  t.equal(badType.code, 64, badType.stderr);
  t.match(badType.stderr, /--type: "task-exploded" must name event types among task-received/);
});

t.test('a worker with events: true on SQLite is refused at start (no event bus)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stem-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stem = await Stem.create({ plugins: [sqlite({ url: `sqlite://${join(dir, 'stem.db')}` }), events()], tasks: [add] });
  t.teardown(() => stem.close());
  await t.rejects(stem.worker({ events: true }).start(), {
    name: 'UnsupportedCapabilityError',
    message: /events: true needs the broker capability "events", which the Sqlite broker does not offer/,
  });
});
