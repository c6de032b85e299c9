import t from 'tap';
import { PostgresBroker, PostgresConnection, runMigrations } from '../../plugins/postgres/index.js';
import { resolvePostgresOptions } from '../../plugins/postgres/postgres-options.js';
import { concurrencyContract } from '../contract/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

if (await requirePostgres(t)) {
  const schema = uniqueSchema('concurrency');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));
  await concurrencyContract(t, {
    name: 'postgres',
    async create() {
      const namespace = `ns-${Math.random().toString(36).slice(2, 10)}`;
      const connection = await PostgresConnection.open(
        resolvePostgresOptions({ url: testUrl, schema, namespace, migrate: false, poolSize: 4 }),
      );
      return new PostgresBroker(connection);
    },
  });
}
