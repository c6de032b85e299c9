// The composition matrix, leg "redis-postgres": a Redis broker and a Postgres backend, the README's common mix.
// The scenarios are in matrix-scenarios.ts; one file per leg lets tap run the legs in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-postgres');
