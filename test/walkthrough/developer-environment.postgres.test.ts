// docs/getting-started/developer-environment.md with its "results in Postgres" alternative, run
// as printed (test/walkthrough/walkthrough-runner.ts), in a database of its own.
import t from 'tap';
import { requirePostgres } from '../postgres/postgres-harness.js';
import { requireRedis } from '../redis/redis-test-support.js';
import { runWalkthrough } from './walkthrough-runner.js';

t.test('a reader following the developer-environment walkthrough sees what it shows, results in Postgres', async (t) => {
  if (!(await requireRedis(t))) return;
  if (!(await requirePostgres(t))) return;
  t.setTimeout(600_000);
  // Other dbs than the Redis variant's, so that both files can run at once.
  await runWalkthrough(t, { alternatives: true, redisDbs: [9, 10, 11] });
});
