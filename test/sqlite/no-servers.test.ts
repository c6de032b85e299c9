// The two-terminal walkthrough on the CLI's default with no server anywhere: both processes run in
// a network namespace of their own (`unshare --net`: not even loopback is up), so a Redis or Postgres
// connection could not succeed even by accident. `stem worker start` idles, `stem enqueue --wait`
// prints the result: the SQLite file of the project is all they share.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/run-stem.js';

t.setTimeout(600_000);

const canUnshare = spawnSync('unshare', ['--net', 'true']).status === 0;

t.test('with no network at all, stem worker start and stem enqueue --wait meet in .stem/stem.db', async (t) => {
  if (!canUnshare) {
    const why = 'unshare --net is not available here (it needs root or user namespaces)';
    if (process.env.CI) t.fail(why);
    else t.comment(`SKIPPED LOUDLY: ${why}`);
    return;
  }
  const project = mkdtempSync(join(repoRoot, '.tmp-sqlite-offline-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(
    join(project, 'stem.config.mjs'),
    `import { defineConfig, defineTask } from 'stem';
const greet = defineTask({ name: 'greet', handler: async ({ who }) => \`hello \${who}\` });
export default defineConfig({ tasks: [greet] });
`,
  );
  const stem = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(repoRoot, 'bin/stem.js'))}`;
  // Terminal 1 in the background, terminal 2 once terminal 1 is ready; every STEM_* variable unset.
  const script = `
    set -u
    for v in $(env | sed -n 's/^\\(STEM_[A-Z_]*\\)=.*/\\1/p'); do unset "$v"; done
    ${stem} worker start > worker.log 2>&1 &
    worker=$!
    for _ in $(seq 1 900); do grep -q 'ready on' worker.log && break; sleep 0.2; done
    ${stem} enqueue greet --args '{"who":"offline"}' --wait --timeout 60s
    code=$?
    kill -TERM $worker; wait $worker
    echo "worker exit $?"
    cat worker.log >&2
    exit $code
  `;
  const result = spawnSync('unshare', ['--net', 'bash', '-c', script], { cwd: project, encoding: 'utf8', timeout: 300_000 });
  t.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  t.match(result.stdout, /succeeded "hello offline"/, 'the second process prints the result');
  t.match(result.stdout, /worker exit 0/, 'the worker stops cleanly');
  t.match(result.stderr, /consuming default \(broker sqlite:\/\/\.stem\/stem\.db/, 'the worker said it uses the default');
  t.notMatch(result.stderr, /ECONNREFUSED|ENETUNREACH|cannot reach/, 'nothing tried a server');
});
