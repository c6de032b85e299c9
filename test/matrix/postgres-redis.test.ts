// The composition matrix, leg "postgres-redis": a Postgres broker and a Redis backend.
// The scenarios are in matrix-scenarios.ts; one file per leg lets tap run the legs in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'postgres-redis');
