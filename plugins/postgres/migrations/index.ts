import type { Migration, MigrationProvider } from 'kysely';
import { brokerTables } from './2025-11-29-01-broker.js';
import { resultBackendTables } from './2025-11-29-02-result-backend.js';
import { storeTables } from './2025-11-29-03-stores.js';
import { hotUpdates } from './2026-11-29-04-hot-updates.js';
import { stateOrder } from './2026-11-30-05-state-order.js';
import { chordLeases } from './2026-11-30-06-chord-leases.js';
import { concurrencyKeys } from './2026-11-30-07-concurrency-keys.js';
import { taskListing } from './2026-11-30-08-task-listing.js';
import { workflowTables } from './2026-11-30-09-workflows.js';
import { queuedInMessage } from './2026-11-30-10-queued-in-message.js';
import { listingWithoutUnescape } from './2026-11-30-11-listing-without-unescape.js';

/**
 * The plugin's migrations in order, bound to a schema. An object provider rather than Kysely's
 * FileMigrationProvider: it needs no directory scan, so it runs the same under tsx and compiled.
 */
export class SchemaMigrations implements MigrationProvider {
  constructor(private readonly schema: string) {}

  /** The migrations by name; names sort in the order they must run. */
  async getMigrations(): Promise<Record<string, Migration>> {
    return {
      '2025-11-29-01-broker': brokerTables(this.schema),
      '2025-11-29-02-result-backend': resultBackendTables(this.schema),
      '2025-11-29-03-stores': storeTables(this.schema),
      '2026-11-29-04-hot-updates': hotUpdates(this.schema),
      '2026-11-30-05-state-order': stateOrder(this.schema),
      '2026-11-30-06-chord-leases': chordLeases(this.schema),
      '2026-11-30-07-concurrency-keys': concurrencyKeys(this.schema),
      '2026-11-30-08-task-listing': taskListing(this.schema),
      '2026-11-30-09-workflows': workflowTables(this.schema),
      '2026-11-30-10-queued-in-message': queuedInMessage(this.schema),
      '2026-11-30-11-listing-without-unescape': listingWithoutUnescape(this.schema),
    };
  }
}
