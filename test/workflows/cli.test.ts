// stem wf start|list|show|emit|rewind|cancel, run in this process (runInProcess) against a SQLite
// file, with a worker of the same config in this process too: no process is spawned.
import { join } from 'node:path';
import t from 'tap';
import { sqlite } from '../../plugins/sqlite/index.js';
import { workflows, workflowsOf } from '../../plugins/workflows/index.js';
import { Stem } from '../../sdk/index.js';
import { runInProcess } from '../cli/in-process.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../sqlite/sqlite-harness.js';

const dir = tempDir('wf-cli');
t.teardown(() => dir.cleanup());
process.env.WF_SQLITE_URL = dir.url('stem.db');
const config = join(import.meta.dirname, 'fixtures', 'sqlite.config.ts');
const env = { STEM_CONFIG: config };
// The CLI loads the config module (and so its plugin objects) itself; the test's worker gets plugins of its own.
const { gated } = await import('./fixtures/sqlite.config.js');

const wf = (...args: string[]) => runInProcess(['wf', ...args], { env });

t.test('stem wf drives a run from start to result, then rewinds and cancels', async (t) => {
  const started = await wf('start', 'cli.gated', '--input', '{"key":"k1"}', '--json');
  t.equal(started.code, 0, started.stderr);
  const { id } = JSON.parse(started.stdout) as { id: string };

  const early = await wf('emit', 'go', 'k1', '--payload', '{"n":21}');
  t.equal(early.code, 0, early.stderr);
  t.match(early.stdout, /buffered/, 'emitted before any worker ran the run: buffered');

  const listed = await wf('list', '--workflow', 'cli.gated', '--json');
  t.same(
    (JSON.parse(listed.stdout) as Array<{ id: string; status: string }>).map((run) => [run.id, run.status]),
    [[id, 'running']],
  );

  const stem = await Stem.create({ plugins: [sqlite({ url: process.env.WF_SQLITE_URL! }), workflows({ definitions: [gated] })] });
  t.teardown(() => stem.close());
  await stem.worker({ concurrency: 2 }).start();
  const ops = workflowsOf(stem);
  t.equal(await ops.handle(id).result({ timeoutMs: 60_000 }), 42, 'the buffered event reached the run');

  const shown = await wf('show', id);
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /status\s+succeeded/);
  t.match(shown.stdout, /result\s+42/);
  t.match(shown.stdout, /event\s+.*go/);
  t.match(shown.stdout, /step\s+.*double/);

  const rewound = await wf('rewind', id, 'double');
  t.equal(rewound.code, 0, rewound.stderr);
  t.match(rewound.stdout, /rewound to double \(rewind 1\)/);
  await waitFor(
    async () => (await ops.get(id))?.status === 'succeeded' && (await ops.show(id)).checkpoints.length === 2,
    'the rewound run to end',
  );

  const second = JSON.parse((await wf('start', 'cli.gated', '--input', '{"key":"k2"}', '--json')).stdout) as { id: string };
  await waitFor(async () => (await ops.get(second.id))?.status === 'waiting', 'the second run to wait');
  const cancelled = await wf('cancel', second.id, '--reason', 'not needed', '--json');
  t.equal(cancelled.code, 0, cancelled.stderr);
  t.match(JSON.parse(cancelled.stdout), { status: 'cancelled', error: { message: 'not needed' } });
  const late = await wf('emit', 'go', 'k2', '--json');
  t.same(JSON.parse(late.stdout), { delivered: [] }, 'a cancelled run receives nothing');
});

t.test('stem wf refuses what it cannot do, with a one-line error and its exit code', async (t) => {
  const unknown = await wf('show', 'no-such-run');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no workflow run has id no-such-run/);
  const badStatus = await wf('list', '--status', 'asleep');
  t.equal(badStatus.code, 64);
  t.match(badStatus.stderr, /"asleep" is not a run status/);
  const badWorkflow = await wf('start', 'cli.nope');
  t.not(badWorkflow.code, 0);
  t.match(badWorkflow.stderr, /workflow "cli.nope" is not registered here; known: cli.gated@1/);
});
