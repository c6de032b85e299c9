// The composition matrix, leg "redis-split": Redis broker and Redis backend on two dbs, the seed layout (db 0 / db 1; here the test db and its neighbour).
// The scenarios are in matrix-scenarios.ts; one file per leg lets tap run the legs in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-split');
