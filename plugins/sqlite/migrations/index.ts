import type { Migration, MigrationProvider } from 'kysely';
import { brokerTables } from './2026-12-01-01-broker.js';
import { resultBackendTables } from './2026-12-01-02-result-backend.js';
import { storeTables } from './2026-12-01-03-stores.js';
import { leanerWrites } from './2026-12-02-04-leaner-writes.js';
import { concurrencyKeys } from './2026-12-03-05-concurrency-keys.js';
import { taskListing } from './2026-12-03-06-task-listing.js';
import { workflowTables } from './2026-12-03-07-workflows.js';

/**
 * The plugin's migrations in order. An object provider rather than Kysely's FileMigrationProvider:
 * it needs no directory scan, so it runs the same under tsx and compiled.
 */
export class SqliteMigrations implements MigrationProvider {
  /** The migrations by name; names sort in the order they must run. */
  async getMigrations(): Promise<Record<string, Migration>> {
    return {
      '2026-12-01-01-broker': brokerTables,
      '2026-12-01-02-result-backend': resultBackendTables,
      '2026-12-01-03-stores': storeTables,
      '2026-12-02-04-leaner-writes': leanerWrites,
      '2026-12-03-05-concurrency-keys': concurrencyKeys,
      '2026-12-03-06-task-listing': taskListing,
      '2026-12-03-07-workflows': workflowTables,
    };
  }
}
