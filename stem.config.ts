// The example composition the stem CLI loads when run in this directory. With no STEM_* variables
// everything runs in memory; STEM_BROKER_URL=redis://… (and friends) switch services to Redis or
// Postgres without touching this file.
import { defineConfig } from 'stem';
import { canvas } from 'stem/plugins/canvas';
import tasks from './fixtures/tasks.js';

export default defineConfig({
  // canvas() lets these workers move chains on and fire chord callbacks.
  plugins: [canvas()],
  tasks,
  defaultQueue: 'default',
  resultTtl: '1d',
  worker: { concurrency: 8 },
});
