import type { SetOptions, TaskStatus } from '../../sdk/contracts/index.js';

/**
 * What the SQLite broker asks of a result backend on its connection (`backend.stateWriter(key)`)
 * to write task states inside its own `BEGIN IMMEDIATE` transaction: the insert of an enqueue, the
 * delete of an ack.
 */
export interface SqliteStateWriter {
  /** The TTL a write with these options keeps its states for. */
  ttlFor(options: SetOptions): number;
  /** Writes the states inside the caller's transaction; returns those applied (not older than the stored ones). */
  writeStates(statuses: readonly TaskStatus[], ttlMs: number): TaskStatus[];
  /** After the commit: tells watchers of this process (unless `options.quiet`) and the change monitor. */
  announce(applied: readonly TaskStatus[], options?: SetOptions): void;
}
