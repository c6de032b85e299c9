// The composition matrix, leg "postgres-redis" (a Postgres broker and a Redis backend), written as plugin factories (one redis()/postgres() plugin where the leg has one server).
// The scenarios are in matrix-scenarios.ts; one file per leg and form lets tap run them in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'postgres-redis', 'plugins');
