// The composition matrix, leg "redis-split" (Redis broker and Redis backend on two dbs, the seed layout (db 0 / db 1; here the test db and its neighbour)), written as plugin factories (one redis()/postgres() plugin where the leg has one server).
// The scenarios are in matrix-scenarios.ts; one file per leg and form lets tap run them in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-split', 'plugins');
