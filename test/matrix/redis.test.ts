// The composition matrix, leg "redis": one redis() plugin; in URL form the same Redis URL for broker and backend.
// The scenarios are in matrix-scenarios.ts; one file per leg lets tap run the legs in parallel.
import t from 'tap';
import { matrixScenarios } from './matrix-scenarios.js';

await matrixScenarios(t, 'redis');
