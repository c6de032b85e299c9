// The composition matrix, leg "redis-split" (Redis broker and Redis backend on two dbs, the seed layout (db 0 / db 1; here the test db and its neighbour)), written as STEM_BROKER_URL / STEM_RESULT_BACKEND_URL, as the CLI reads them (one connection per service).
// The scenarios are in matrix-scenarios.ts; one file per leg and form lets tap run them in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-split', 'urls');
