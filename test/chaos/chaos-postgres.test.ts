// The chaos harness in a small configuration, so that CI runs every Postgres fault (npm run test:chaos runs 5,000 tasks).
import t from 'tap';
import { requirePostgres } from '../postgres/postgres-harness.js';
import { postgresBinDir } from './owned-postgres-server.js';
import { chaosTests } from './chaos-tap.js';

t.setTimeout(600_000);
if (await requirePostgres(t)) {
  chaosTests(t, 'postgres', [
    ['kill-9', 'kill -9 of a random worker while tasks are in flight loses nothing; any duplicate ran on a killed worker'],
    ['pg-terminate', 'pg_terminate_backend of every worker connection loses nothing'],
    ['sigterm', 'SIGTERM to every worker during a burst loses nothing and runs nothing twice'],
  ]);
  if (postgresBinDir() !== undefined) {
    chaosTests(t, 'postgres', [
      [
        'pg-restart',
        'a Postgres cluster of its own restarted with pg_ctl restart -m immediate mid-burst loses nothing; duplicates only of tasks in flight',
      ],
    ]);
  } else {
    const message = 'no PostgreSQL binaries under /usr/lib/postgresql/*/bin: the restart scenario makes its own cluster with initdb';
    if (process.env.CI === 'true') t.fail(message);
    else t.test(message, { skip: message }, async () => undefined);
  }
}
