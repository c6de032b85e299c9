import t from 'tap';
import { Stem } from 'stem';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { uniqueName } from '../helpers/wait.js';
import { wakeOnTimeCases } from '../helpers/wake-on-time-cases.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

// Idle consumers poll once a minute (pollIntervalMs): only a wake-up on time lets these tasks run within the tests' waits.
if (await requirePostgres(t)) {
  const schema = uniqueSchema('wake');
  await runMigrations(testUrl, schema);
  const namespace = uniqueName('ns');
  const stems: Stem[] = [];
  t.teardown(async () => {
    await Promise.all(stems.map((stem) => stem.close()));
    await dropSchema(schema);
  });
  wakeOnTimeCases(t, {
    async stem(tasks, extra = []) {
      const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, namespace, pollIntervalMs: 60_000 }), ...extra], tasks });
      stems.push(stem);
      return stem;
    },
    // a consumer's sleep cannot be seen from outside; each case starts after the worker went idle once
    async idle() {},
  });
}
