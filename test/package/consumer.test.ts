// The package as a user gets it: `npm pack` (which builds dist/ on prepack), installed into a
// fresh project, then used from plain JavaScript, CommonJS, a consumer's own tsc, and the `stem`
// binary through npx, under this Node and the Node 22 and 24 binaries that .ci/run caches.
// One pack and one install serve every case (tsx is added to the project once, halfway through,
// to show that nothing before needed it).
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { deleteNamespace, testNamespace } from '../redis/redis-test-support.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import { createConsumerProject, repoRoot, repoVersion, run, start } from './consumer-project.js';
import { nodeLines, userEnv, type NodeLine } from './node-lines.js';

// A pack runs the TypeScript build; on a loaded 2-core machine the whole file needs minutes.
t.setTimeout(20 * 60_000);

const lines = nodeLines(t);
const withRedis = await requireRedis(t);
const project = await createConsumerProject([`@types/node@${repoVersion('@types/node')}`]);
t.teardown(() => project.remove());
cpSync(join(repoRoot, 'test/package/consumer-files'), project.dir, { recursive: true });

t.test('the tarball holds the compiled package, its types, maps and sources, and nothing else', async (t) => {
  const files = project.files;
  t.ok(
    files.includes('dist/sdk/index.js') && files.includes('dist/sdk/index.d.ts') && files.includes('dist/sdk/index.d.ts.map'),
    'the SDK, compiled, with types and a declaration map',
  );
  t.ok(
    files.includes('dist/test/contract/index.js') && files.includes('dist/test/contract/index.d.ts'),
    'the contract suites behind stem/testing',
  );
  t.ok(files.includes('dist/plugins/redis/lua/fetch.lua'), 'the Redis Lua scripts beside the compiled plugin');
  t.ok(files.includes('dist/plugins/dashboard/page/app.js'), "the dashboard's page beside the compiled plugin");
  t.ok(
    files.some((file) => /^dist\/plugins\/postgres\/migrations\/.+\.js$/.test(file)),
    'the Postgres migrations, compiled',
  );
  t.ok(files.includes('bin/stem.js'), 'the binary');
  const stray = files.filter(
    (file) => !/^(dist|sdk|plugins|cli|test\/contract)\/|^(bin\/stem\.js|package\.json|README\.md|LICENSE)$/.test(file),
  );
  t.same(stray, [], 'no file outside the runtime, its types and the sources the maps point at');
  t.same(
    files.filter((file) => /\.test\.|(^|\/)(bench|fixtures|\.ci)\//.test(file)),
    [],
    'no tests, benches, fixtures or CI scripts',
  );
});

/** Runs `node file` in the project with a Node line. */
const node = (line: NodeLine, args: string[], extra: NodeJS.ProcessEnv = {}, cwd = project.dir) =>
  run(line.bin, args, { cwd, env: userEnv(line.bin, extra), timeoutMs: 120_000 });
/** Runs `npx stem …` in the project with a Node line. */
const npxStem = (line: NodeLine, args: string[], extra: NodeJS.ProcessEnv = {}, cwd = project.dir) =>
  run('npx', ['stem', ...args], { cwd, env: userEnv(line.bin, extra), timeoutMs: 120_000 });

/** `npx stem worker start` in `dir`, then `npx stem enqueue … --wait` from another process, over Redis. */
async function workerRoundTrip(
  t: Test,
  line: NodeLine,
  dir: string,
  task: string,
  args: object,
  extraArgs: string[] = [],
): Promise<string> {
  const namespace = testNamespace('consumer');
  t.teardown(() => deleteNamespace(namespace));
  const env = userEnv(line.bin, { CONSUMER_REDIS_URL: REDIS_URL, CONSUMER_NAMESPACE: namespace });
  const worker = start('npx', ['stem', 'worker', 'start', ...extraArgs], { cwd: dir, env });
  t.teardown(() => worker.stop());
  await worker.waitFor(/ready on .*consuming default/);
  const enqueued = await run('npx', ['stem', 'enqueue', task, '--args', JSON.stringify(args), '--wait', '--timeout', '60s', ...extraArgs], {
    cwd: dir,
    env,
    timeoutMs: 120_000,
  });
  t.equal(enqueued.code, 0, `enqueue --wait exits 0\n${enqueued.stderr}`);
  await worker.waitFor(new RegExp(`${task.replace('.', '\\.')}\\[.*succeeded`));
  await worker.stop();
  return enqueued.stdout;
}

for (const line of lines) {
  await t.test(`Node ${line.label}: a plain .mjs runs a task in memory through every export path`, async (t) => {
    const result = await node(line, ['app.mjs']);
    t.equal(result.code, 0, result.stderr);
    t.same(JSON.parse(result.stdout), { sum: 5, exports: ['function', 'function', 'function', 'function'] });
  });

  await t.test(`Node ${line.label}: require('stem') works from CommonJS`, async (t) => {
    const result = await node(line, ['app.cjs']);
    t.equal(result.code, 0, result.stderr);
    t.same(JSON.parse(result.stdout), { sum: 9, redis: 'function' });
  });

  await t.test(`Node ${line.label}: npx stem --help lists the commands`, async (t) => {
    const result = await npxStem(line, ['--help']);
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, /worker start/);
    t.match(result.stdout, /enqueue/);
  });

  if (withRedis) {
    await t.test(
      `Node ${line.label}: a stem.config.mjs worker runs what npx stem enqueue --wait sends, without tsx installed`,
      async (t) => {
        const stdout = await workerRoundTrip(t, line, join(project.dir, 'mjs'), 'consumer.add', { a: 20, b: 22 });
        t.match(stdout, / succeeded 42\n/);
      },
    );
  }
}

await t.test(`a stem.config.ts without tsx in the project fails with what to do`, async (t) => {
  const result = await npxStem(lines[0]!, ['tasks', 'list'], {}, join(project.dir, 'ts'));
  t.equal(result.code, 64, result.stderr);
  t.match(result.stderr, /stem\.config\.ts is TypeScript.*npm install --save-dev tsx.*\.js or \.mjs/);
});

for (const resolution of ['nodenext', 'bundler']) {
  await t.test(
    `a consumer's tsc (moduleResolution ${resolution}, strict, skipLibCheck off) type-checks stem.enqueue against the task`,
    async (t) => {
      const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
      const result = await run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], {
        cwd: project.dir,
        env: userEnv(process.execPath),
        timeoutMs: 300_000,
      });
      // A wrong argument type that stopped being an error would show up as an unused @ts-expect-error.
      t.equal(result.code, 0, `tsc reports nothing:\n${result.stdout}${result.stderr}`);
    },
  );
}

await t.test('the project installs tsx (an optional peer dependency of stem)', async (t) => {
  const installed = await project.install([`tsx@${repoVersion('tsx')}`]);
  t.equal(installed.code, 0, installed.stderr);
});

for (const line of lines) {
  if (!withRedis) break;
  await t.test(
    `Node ${line.label}: with tsx installed, a stem.config.ts and --registry tasks.ts serve npx stem worker start and enqueue --wait`,
    async (t) => {
      const stdout = await workerRoundTrip(t, line, join(project.dir, 'ts'), 'consumer.multiply', { a: 6, b: 7 }, [
        '--registry',
        'tasks.ts',
      ]);
      t.match(stdout, / succeeded 42\n/);
    },
  );
}

// A project without "type": "module": tsx compiles its .ts files to CommonJS. Written here, not in
// consumer-files/, which the repository's own tsc checks as ES modules.
project.write('cjs-ts/package.json', `${JSON.stringify({ name: 'stem-consumer-commonjs', private: true }, null, 2)}\n`);
project.write(
  'cjs-ts/stem.config.ts',
  [
    "import { defineConfig, type StemConfig } from 'stem';",
    "import { redis } from 'stem/plugins/redis';",
    "import { power } from './tasks';",
    "const url: string = process.env.CONSUMER_REDIS_URL ?? 'redis://127.0.0.1:6379/15';",
    "const config: StemConfig = { plugins: [redis({ url, namespace: process.env.CONSUMER_NAMESPACE ?? 'consumer' })], tasks: [power], defaultQueue: 'default' };",
    'export default defineConfig(config);',
    '',
  ].join('\n'),
);
project.write(
  'cjs-ts/tasks.ts',
  [
    "import { defineTask } from 'stem';",
    'interface Power { base: number; exponent: number }',
    "export const power = defineTask({ name: 'consumer.power', handler: async ({ base, exponent }: Power): Promise<number> => base ** exponent });",
    "export const square = defineTask({ name: 'consumer.square', handler: async (n: { x: number }): Promise<number> => n.x * n.x });",
    'export default [power, square];',
    '',
  ].join('\n'),
);

for (const line of lines) {
  await t.test(
    `Node ${line.label}: in a CommonJS project, stem.config.ts (importing ./tasks without an extension) and --registry tasks.ts load`,
    async (t) => {
      const result = await npxStem(line, ['tasks', 'list', '--registry', 'tasks.ts', '--json'], {}, join(project.dir, 'cjs-ts'));
      t.equal(result.code, 0, result.stderr);
      t.same((JSON.parse(result.stdout) as Array<{ name: string }>).map((task) => task.name).sort(), ['consumer.power', 'consumer.square']);
    },
  );
  if (!withRedis) continue;
  await t.test(`Node ${line.label}: in a CommonJS project, a stem.config.ts serves npx stem worker start and enqueue --wait`, async (t) => {
    const stdout = await workerRoundTrip(t, line, join(project.dir, 'cjs-ts'), 'consumer.power', { base: 2, exponent: 10 });
    t.match(stdout, / succeeded 1024\n/);
  });
}
