import t from 'tap';
import {
  PostgresBroker,
  PostgresConnection,
  PostgresLockStore,
  PostgresRateLimiter,
  PostgresResultBackend,
  PostgresRevokeStore,
  PostgresScheduleStore,
  runMigrations,
} from '../../plugins/postgres/index.js';
import { resolvePostgresOptions } from '../../plugins/postgres/postgres-options.js';
import {
  brokerContract,
  lockStoreContract,
  rateLimiterContract,
  resultBackendContract,
  revokeStoreContract,
  scheduleStoreContract,
  taskListingContract,
} from '../contract/index.js';
import { dropSchema, requirePostgres, testUrl, uniqueSchema } from './postgres-harness.js';

if (await requirePostgres(t)) {
  const schema = uniqueSchema('contract');
  await runMigrations(testUrl, schema);
  t.teardown(() => dropSchema(schema));

  /** A fresh service on its own pool and namespace, as a plugin would make it (migrations already ran). */
  const make =
    <T>(Service: new (connection: PostgresConnection) => T) =>
    async (): Promise<T> => {
      const namespace = `ns-${Math.random().toString(36).slice(2, 10)}`;
      const connection = await PostgresConnection.open(
        resolvePostgresOptions({ url: testUrl, schema, namespace, migrate: false, poolSize: 4 }),
      );
      return new Service(connection);
    };

  await brokerContract(t, { name: 'postgres', create: make(PostgresBroker) });
  await resultBackendContract(t, { name: 'postgres', create: make(PostgresResultBackend) });
  await taskListingContract(t, { name: 'postgres', create: make(PostgresResultBackend) });
  await revokeStoreContract(t, { name: 'postgres', create: make(PostgresRevokeStore) });
  await rateLimiterContract(t, { name: 'postgres', create: make(PostgresRateLimiter) });
  await scheduleStoreContract(t, { name: 'postgres', create: make(PostgresScheduleStore) });
  await lockStoreContract(t, { name: 'postgres', create: make(PostgresLockStore) });
}
