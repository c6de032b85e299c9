import type { RawBuilder } from 'kysely';
import type { SetOptions, TaskStatus } from '../../sdk/contracts/index.js';

/** A state write as two parts of one SQL statement: `written`, the upsert CTE, and `notify`, the select that NOTIFYs each write. */
export interface StateWriteSql {
  written: RawBuilder<unknown>;
  notify: RawBuilder<unknown>;
}

/** The values of a state write, in the form its statement binds them (`upsertValues`), or placeholders for them. */
export interface StateWriteValues {
  ids: unknown;
  states: unknown;
  statuses: unknown;
  generations: unknown;
  attempts: unknown;
  updatedAts: unknown;
  ttlMs: unknown;
}

/**
 * Placeholders for `upsertSql`: a statement built from them is compiled once, and each run binds
 * the values of `upsertValues` where they stand (the worker's settle).
 */
export const STATE_WRITE_SLOTS: Readonly<StateWriteValues> = Object.freeze({
  ids: Object.freeze({ slot: 'ids' }),
  states: Object.freeze({ slot: 'states' }),
  statuses: Object.freeze({ slot: 'statuses' }),
  generations: Object.freeze({ slot: 'generations' }),
  attempts: Object.freeze({ slot: 'attempts' }),
  updatedAts: Object.freeze({ slot: 'updatedAts' }),
  ttlMs: Object.freeze({ slot: 'ttlMs' }),
});

/**
 * What the Postgres broker asks of a result backend on its connection (`backend.stateWriter(key)`)
 * to write task states in its own statement: the insert of an enqueue, the delete of an ack.
 */
export interface PostgresStateWriter {
  /** The state write's parts, to embed as the CTE `written` and the final select. */
  upsertParts(statuses: readonly TaskStatus[], options?: SetOptions): StateWriteSql;
  /** The values `upsertSql` binds for these statuses. */
  upsertValues(statuses: readonly TaskStatus[], options?: SetOptions): StateWriteValues;
  /** The state write's parts for `values` (or STATE_WRITE_SLOTS), NOTIFYing each write unless `quiet`. */
  upsertSql(values: StateWriteValues, quiet: boolean): StateWriteSql;
}
