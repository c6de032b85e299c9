// The composition matrix, leg "redis-postgres" (a Redis broker and a Postgres backend, the README's common mix), written as plugin factories (one redis()/postgres() plugin where the leg has one server).
// The scenarios are in matrix-scenarios.ts; one file per leg and form lets tap run them in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis-postgres', 'plugins');
