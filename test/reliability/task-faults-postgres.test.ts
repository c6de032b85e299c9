import t from 'tap';
import { Stem } from '../../sdk/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { LATE_FAULT, storeScenarios } from './task-faults-harness.js';

// One task's fault is that task's alone, on Postgres: the worker runs in a child process.
if (await requirePostgres(t)) {
  const schema = uniqueSchema('faults');
  t.teardown(() => dropSchema(schema));
  const stem = await Stem.create({ plugins: [postgres({ url: testUrl, schema, pollIntervalMs: 100 })] });
  t.teardown(() => stem.close());
  await storeScenarios(t, stem, { FAULT_STORE: 'postgres', FAULT_URL: testUrl, FAULT_NAMESPACE: schema }, [LATE_FAULT]);
}
