// A smoke of the Redis and Postgres suites under the other Node lines our users run (22 and 24,
// the binaries .ci/run caches from the npm registry): each test file runs as a plain TAP program
// under that Node, through tsx, from the sources. The consumer test covers the packed package.
import t from 'tap';
import { run, repoRoot } from './consumer-project.js';
import { otherNodeLines, userEnv } from './node-lines.js';

t.setTimeout(15 * 60_000);

/** Small files that still open real connections, run the worker and go through the scripts and migrations. */
const SUITES = ['test/redis/redis-plugin.test.ts', 'test/postgres/worker.test.ts'];

for (const line of otherNodeLines(t)) {
  for (const suite of SUITES) {
    await t.test(`Node ${line.label}: ${suite} passes`, async (t) => {
      const env = userEnv(line.bin, {
        CI: process.env.CI ?? '',
        ...(process.env.STEM_TEST_REDIS_URL ? { STEM_TEST_REDIS_URL: process.env.STEM_TEST_REDIS_URL } : {}),
        ...(process.env.STEM_TEST_POSTGRES_URL ? { STEM_TEST_POSTGRES_URL: process.env.STEM_TEST_POSTGRES_URL } : {}),
      });
      let result = await run(line.bin, ['--import=tsx', suite], { cwd: repoRoot, env, timeoutMs: 600_000 });
      // The harnesses give a server 2-3 s to answer the first connection; on a loaded machine a
      // cold Node can miss that. Only that (not a failed test) earns one more try.
      if (result.code !== 0 && /is (not reachable|unreachable) at/.test(result.stdout)) {
        t.comment(`${suite} could not reach its server under Node ${line.label}; trying once more`);
        result = await run(line.bin, ['--import=tsx', suite], { cwd: repoRoot, env, timeoutMs: 600_000 });
      }
      const version = await run(line.bin, ['--version'], { cwd: repoRoot, env });
      t.match(version.stdout, new RegExp(`^v${line.label}\\.`), `the binary is Node ${line.label}`);
      t.equal(result.code, 0, `exit code 0\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`);
      t.match(result.stdout, /^# \{ total: \d+, pass: [1-9]\d*/m, 'the file ran and passed tests');
      t.notMatch(result.stdout, /^not ok /m, 'no failed test');
    });
  }
}
