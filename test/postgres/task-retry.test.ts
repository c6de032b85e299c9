import t from 'tap';
import { postgres, runMigrations } from '../../plugins/postgres/index.js';
import { uniqueName } from '../contract/support.js';
import { taskRetryCases } from '../helpers/task-retry-cases.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

if (await requirePostgres(t)) {
  const schema = uniqueSchema('retry');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  t.test('stem.retry and stem.listTasks on Postgres', (t) =>
    taskRetryCases(t, () => [postgres({ url: testUrl, schema, namespace: uniqueName('ns'), migrate: false })]),
  );
}
