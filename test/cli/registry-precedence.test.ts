import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot, runStem } from '../helpers/run-stem.js';

// A project of its own inside the repository, so that its files can import 'stem' by name.
const project = mkdtempSync(join(repoRoot, '.tmp-registry-'));
t.teardown(() => rmSync(project, { recursive: true, force: true }));
const env = { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '', STEM_CONFIG: '', STEM_ROUTING_CONFIG: '' };
writeFileSync(
  join(project, 'stem.config.mjs'),
  `import { defineConfig, defineTask } from 'stem';
export default defineConfig({ tasks: [defineTask({ name: 'reports.generate', options: { queue: 'from-config' }, handler: async () => 'config' })] });
`,
);
writeFileSync(
  join(project, 'my-tasks.mjs'),
  `import { defineTask } from 'stem';
export default [defineTask({ name: 'reports.generate', options: { queue: 'from-registry' }, handler: async () => 'registry' })];
`,
);
writeFileSync(
  join(project, 'twice.mjs'),
  `import { defineTask } from 'stem';
export default [defineTask({ name: 'dup', handler: async () => 1 }), defineTask({ name: 'dup', handler: async () => 2 })];
`,
);

async function listed(args: string[]): Promise<Array<{ name: string; options: { queue?: string } }>> {
  const run = await runStem(['tasks', 'list', '--json', ...args], { env, cwd: project });
  t.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

t.test('--registry beats the config file for a task both define', async (t) => {
  t.same(
    (await listed([])).map((task) => task.options.queue),
    ['from-config'],
    'the file alone',
  );
  t.same(
    (await listed(['--registry', 'my-tasks.mjs'])).map((task) => task.options.queue),
    ['from-registry'],
    'the flag wins, and the task is listed once',
  );
});

t.test('a registry defining one name twice with different handlers is one clear error', async (t) => {
  const run = await runStem(['tasks', 'list', '--registry', 'twice.mjs'], { env, cwd: project });
  t.not(run.code, 0);
  t.match(run.stderr, /--registry twice\.mjs defines the task "dup" twice/);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});
