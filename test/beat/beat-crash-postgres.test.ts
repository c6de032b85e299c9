// A Beat process killed with SIGKILL mid-firing and restarted, on Postgres: the firing happens under the same id.
import t from 'tap';
import { requirePostgres } from '../postgres/postgres-harness.js';
import { crashTests, postgresStore } from './beat-crash-cases.js';

if (await requirePostgres(t)) crashTests(t, postgresStore);
