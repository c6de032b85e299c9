// The chaos harness in a small configuration, so that CI runs every Postgres fault (npm run test:chaos runs 5,000 tasks).
import t from 'tap';
import { requirePostgres } from '../postgres/postgres-harness.js';
import { chaosTests } from './chaos-tap.js';

t.setTimeout(240_000);
if (await requirePostgres(t)) {
  chaosTests(t, 'postgres', [
    ['kill-9', 'kill -9 of a random worker while tasks are in flight loses nothing; any duplicate ran on a killed worker'],
    ['pg-terminate', 'pg_terminate_backend of every worker connection loses nothing'],
    ['sigterm', 'SIGTERM to every worker during a burst loses nothing and runs nothing twice'],
  ]);
}
