import type { RawBuilder } from 'kysely';
import type { SetOptions, TaskStatus } from '../../sdk/contracts/index.js';

/** A state write as two parts of one SQL statement: `written`, the upsert CTE, and `notify`, the select that NOTIFYs each write. */
export interface StateWriteSql {
  written: RawBuilder<unknown>;
  notify: RawBuilder<unknown>;
}

/**
 * What the Postgres broker asks of a result backend on its connection (`backend.stateWriter(key)`)
 * to write task states in its own statement: the insert of an enqueue, the delete of an ack.
 */
export interface PostgresStateWriter {
  /** The state write's parts, to embed as the CTE `written` and the final select. */
  upsertParts(statuses: readonly TaskStatus[], options?: SetOptions): StateWriteSql;
}
