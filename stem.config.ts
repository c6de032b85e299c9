// The example composition the stem CLI loads when run in this directory. With no STEM_* variables
// everything runs in memory; STEM_BROKER_URL=redis://… (and friends) switch services to Redis or
// Postgres without touching this file.
import { defineConfig } from 'stem';
import tasks from './fixtures/tasks.js';

export default defineConfig({
  tasks,
  defaultQueue: 'default',
  resultTtl: '1d',
  worker: { concurrency: 8 },
});
