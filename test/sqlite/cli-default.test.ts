// The CLI's zero-server default, as a new user meets it: no STEM_* variables, no server, two
// terminals. `stem worker start` in one process and `stem enqueue … --wait` in another share
// `.stem/stem.db` of the project, created on first use.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Stem } from '../../sdk/index.js';
import { repoRoot, runStem, startStem } from '../helpers/run-stem.js';

t.setTimeout(600_000);

const project = mkdtempSync(join(repoRoot, '.tmp-sqlite-cli-'));
t.teardown(() => rmSync(project, { recursive: true, force: true }));
writeFileSync(
  join(project, 'stem.config.mjs'),
  `import { defineConfig, defineTask } from 'stem';
const greet = defineTask({ name: 'greet', handler: async ({ who }) => \`hello \${who}\` });
export default defineConfig({ tasks: [greet] });
`,
);

/** Every STEM_* variable of this process blanked (the CLI reads an empty one as unset), as in a fresh shell. */
const noStemVariables: NodeJS.ProcessEnv = Object.fromEntries(
  Object.keys(process.env)
    .filter((key) => key.startsWith('STEM_'))
    .map((key) => [key, '']),
);

t.test('two terminals with no STEM_* variables: the worker and enqueue --wait meet in .stem/stem.db', async (t) => {
  const worker = await startStem(['worker', 'start'], { cwd: project, env: noStemVariables });
  t.teardown(() => worker.stop());
  await worker.waitForOutput(/ready on .*consuming default \(broker sqlite:\/\/\.stem\/stem\.db/, 180_000);
  t.ok(existsSync(join(project, '.stem', 'stem.db')), 'the database file was created in the project on first use');
  t.match(worker.output(), /the default, no broker configured/, 'the start-up line says the broker is the default');

  const enqueued = await runStem(['enqueue', 'greet', '--args', '{"who":"x"}', '--wait', '--timeout', '60s'], {
    cwd: project,
    env: noStemVariables,
    timeoutMs: 180_000,
  });
  t.equal(enqueued.code, 0, `enqueue --wait exits 0\n${enqueued.stdout}${enqueued.stderr}`);
  t.match(enqueued.stdout, /succeeded "hello x"/, 'the result printed by the other process');
  t.notMatch(enqueued.stderr, /memory/, 'no word of a memory broker');
  await worker.waitForOutput(/greet\[.*succeeded/);

  // A second enqueue without --wait, read back with result wait from a third process.
  const later = await runStem(['enqueue', 'greet', '--args', '{"who":"y"}', '--json'], {
    cwd: project,
    env: noStemVariables,
    timeoutMs: 180_000,
  });
  t.equal(later.code, 0, later.stderr);
  const [{ id }] = JSON.parse(later.stdout) as [{ id: string }];
  const waited = await runStem(['result', 'wait', id, '--timeout', '60s'], { cwd: project, env: noStemVariables, timeoutMs: 180_000 });
  t.equal(waited.code, 0, waited.stdout + waited.stderr);
  t.match(waited.stdout, /hello y/);
  t.equal(await worker.stop(), 0, 'the worker stops cleanly on SIGTERM');
});

t.test('config print names the default and its file', async (t) => {
  const printed = await runStem(['config', 'print', '--json'], { cwd: project, env: noStemVariables });
  t.equal(printed.code, 0, printed.stderr);
  const { urls } = JSON.parse(printed.stdout) as { urls: Record<string, string> };
  for (const service of ['broker', 'backend', 'scheduleStore', 'revokeStore']) {
    t.equal(urls[service], `sqlite://.stem/stem.db (default, ${join(project, '.stem', 'stem.db')})`, `${service}: the SQLite default`);
  }
  const text = await runStem(['config', 'print'], { cwd: project, env: noStemVariables });
  t.match(text.stdout, /"broker":"sqlite:\/\/\.stem\/stem\.db \(default/);
  const configured = await runStem(['config', 'print', '--json'], {
    cwd: project,
    env: { ...noStemVariables, STEM_BROKER_URL: 'redis://127.0.0.1:6379/9' },
  });
  t.equal(
    (JSON.parse(configured.stdout) as { urls: Record<string, string> }).urls.broker,
    'redis://127.0.0.1:6379/9',
    'a configured broker is not the default',
  );
});

t.test('a broker URL in STEM_BROKER_URL wins over the default, and memory:// warns that it ends with the process', async (t) => {
  const worker = await startStem(['worker', 'start'], { cwd: project, env: { ...noStemVariables, STEM_BROKER_URL: 'memory://' } });
  t.teardown(() => worker.stop());
  await worker.waitForOutput(/ready on .*consuming default/, 180_000);
  t.match(worker.output(), /note: the broker is memory:\/\/, which only this process sees/);
  t.notMatch(worker.output(), /sqlite/, 'the default is not used');
  await worker.stop();
  const enqueued = await runStem(['enqueue', 'greet', '--args', '{"who":"z"}'], {
    cwd: project,
    env: { ...noStemVariables, STEM_BROKER_URL: 'memory://' },
  });
  t.match(enqueued.stderr, /the broker is memory:\/\/, which ends with this command/);
});

t.test('a sqlite:// URL is a broker like any other, and the demo stays in memory', async (t) => {
  const file = join(project, 'other', 'jobs.db');
  const url = `sqlite://${file}`;
  const env = { ...noStemVariables, STEM_BROKER_URL: url, STEM_RESULT_BACKEND_URL: url };
  const worker = await startStem(['worker', 'start'], { cwd: project, env });
  t.teardown(() => worker.stop());
  await worker.waitForOutput(/ready on .*consuming default\n/, 180_000);
  const enqueued = await runStem(['enqueue', 'greet', '--args', '{"who":"url"}', '--wait', '--timeout', '60s'], {
    cwd: project,
    env,
    timeoutMs: 180_000,
  });
  t.equal(enqueued.code, 0, enqueued.stdout + enqueued.stderr);
  t.match(enqueued.stdout, /hello url/);
  t.ok(existsSync(file), 'the file the URL names');
  await worker.stop();

  const demo = await runStem(['demo'], { cwd: project, env: noStemVariables, timeoutMs: 180_000 });
  t.equal(demo.code, 0, demo.stderr);
  t.match(demo.stdout, /Stem demo: broker memory/, 'stem demo runs in memory, in one process');
});

t.test('Stem.create() in code keeps memory as its default', async (t) => {
  const stem = await Stem.create({});
  t.teardown(() => stem.close());
  t.equal(stem.provides('broker'), false, 'no plugin: the memory broker');
});
