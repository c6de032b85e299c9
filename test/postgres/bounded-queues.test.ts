import t from 'tap';
import { PostgresBroker, PostgresConnection, runMigrations } from '../../plugins/postgres/index.js';
import { resolvePostgresOptions } from '../../plugins/postgres/postgres-options.js';
import { boundedQueueContract } from '../contract/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

if (await requirePostgres(t)) {
  const schema = uniqueSchema('bounded');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  await boundedQueueContract(t, {
    name: 'postgres',
    async create() {
      const namespace = `ns-${Math.random().toString(36).slice(2, 10)}`;
      // A pool of 4: concurrent publishes run as concurrent transactions.
      const connection = await PostgresConnection.open(
        resolvePostgresOptions({ url: testUrl, schema, namespace, migrate: false, poolSize: 4 }),
      );
      return new PostgresBroker(connection);
    },
  });
}
