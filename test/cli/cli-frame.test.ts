import t from 'tap';
import { runStem } from '../helpers/run-stem.js';

t.test('stem --help lists the commands and exits 0', async (t) => {
  const run = await runStem(['--help']);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /stem demo/);
});

t.test('stem demo runs in memory, prints the outcome table and exits 0', async (t) => {
  const run = await runStem(['demo'], { env: { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' } });
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /broker memory/);
  t.match(run.stdout, /demo\.urgent/);
  t.match(run.stdout, /ok\s+the flaky task failed twice, then succeeded on attempt 3/);
  t.match(run.stdout, /ok\s+the priority-9 task, enqueued last, ran before every priority-1 task/);
  t.notMatch(run.stdout, /FAIL/);
});

t.test('an unknown flag is a usage error: one line, exit 64', async (t) => {
  const run = await runStem(['demo', '--bogus']);
  t.equal(run.code, 64);
  t.match(run.stderr, /^stem: Unsupported option name \("--bogus"\)/);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('a missing config file named by --config is a usage error', async (t) => {
  const run = await runStem(['demo', '--config', 'nope/stem.config.ts']);
  t.equal(run.code, 64);
  t.match(run.stderr, /^stem: config file nope\/stem\.config\.ts does not exist .*check --config or STEM_CONFIG/);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a broker URL with an unknown scheme names the variable and the schemes it takes', async (t) => {
  const run = await runStem(['demo'], { env: { STEM_BROKER_URL: 'kafka://user:secret@localhost:9092' } });
  t.equal(run.code, 64);
  t.match(run.stderr, /STEM_BROKER_URL: "kafka:\/\/user:\*\*\*@localhost:9092" has an unknown scheme; use one of memory:\/\//);
  t.notMatch(run.stderr, /secret/, 'the password is masked');
});
