// Workflows on Postgres: the store contract and the order scenarios, in a schema of their own.
import t from 'tap';
import { PostgresConnection, PostgresWorkflowStore, postgres, runMigrations } from '../../plugins/postgres/index.js';
import { resolvePostgresOptions } from '../../plugins/postgres/postgres-options.js';
import { workflowStoreContract } from '../contract/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from '../postgres/postgres-harness.js';
import { orderScenarios } from './order-scenarios.js';

if (await requirePostgres(t)) {
  const schema = uniqueSchema('workflows');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  await workflowStoreContract(t, {
    name: 'postgres',
    create: async () =>
      new PostgresWorkflowStore(
        await PostgresConnection.open(resolvePostgresOptions({ url: testUrl, schema, migrate: false, poolSize: 4 })),
      ),
  });

  await orderScenarios(t, { plugins: () => [postgres({ url: testUrl, schema, poolSize: 6 })] });
}
