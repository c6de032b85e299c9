import type { ChainableCommander } from 'ioredis';
import type { SetOptions, TaskStatus } from '../../sdk/contracts/index.js';

/**
 * What the Redis broker asks of a result backend on its connection (`backend.stateWriter(key)`)
 * to write task states in its own round trip: the publish of an enqueue, the ack of a flush.
 */
export interface RedisStateWriter {
  /** Adds the state writes to `pipeline`, to run in order with what it already holds. */
  queueSet(pipeline: ChainableCommander, statuses: readonly TaskStatus[], options?: SetOptions): void;
  /** Writes the states on the shared client: auto-pipelining sends them with this tick's other commands. */
  set(statuses: readonly TaskStatus[], options?: SetOptions): Promise<void>;
}
