// docs/getting-started/developer-environment.md, run as printed: every command in order, each in
// its own process, output compared with the page (test/walkthrough/walkthrough-runner.ts). Results
// on Redis, as the page's first exports say; developer-environment.postgres.test.ts takes the
// page's Postgres alternative.
import t from 'tap';
import { requireRedis } from '../redis/redis-test-support.js';
import { runWalkthrough } from './walkthrough-runner.js';

t.test('a reader following the developer-environment walkthrough sees what it shows, results on Redis', async (t) => {
  if (!(await requireRedis(t))) return;
  t.setTimeout(600_000);
  // Free test dbs standing for the page's db 0, 1 and 2 (the suite uses 15 and 14, the bench 12).
  await runWalkthrough(t, { alternatives: false, redisDbs: [6, 7, 8] });
});
