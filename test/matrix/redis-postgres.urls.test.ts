// The composition matrix, leg "redis-postgres" (a Redis broker and a Postgres backend, the README's common mix), written as STEM_BROKER_URL / STEM_RESULT_BACKEND_URL, as the CLI reads them (one connection per service).
// The scenarios are in matrix-scenarios.ts; one file per leg and form lets tap run them in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-postgres', 'urls');
