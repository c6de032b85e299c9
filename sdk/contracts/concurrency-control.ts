/** What a broker reports of one concurrency key of a queue. */
export interface ConcurrencyKeyStats {
  /** The concurrency key (`tenant-42`, or `task:<name>` for a task-wide limit). */
  key: string;
  /** Tasks of this key holding a slot now (running, or leased and waiting for their retry). */
  running: number;
  /** Tasks of this key waiting for a slot. */
  waiting: number;
  /** The limit in force: the run-time override when one is set, else the one the tasks carry. */
  limit: number;
}

/**
 * Optional broker capability: per-key concurrency enforced by the broker itself, across every
 * worker. A broker that offers it honours the `stem-concurrency-key` / `stem-concurrency-limit`
 * headers of the envelopes it carries: at most `limit` tasks of one key hold a slot at once; the
 * others of that key wait in enqueue order without holding up other keys (a worker takes the next
 * runnable task). A slot is held from claim to ack, dead letter or drop; a task whose worker died
 * keeps it only until its lease runs out and it is redelivered, so no slot leaks; a task waiting
 * for its retry keeps it (with limit 1, a key's tasks run strictly in order, retries included).
 * The kernel asks for it (`broker.concurrency`) before it publishes a keyed task or starts a
 * worker for a keyed task, and refuses with UnsupportedCapabilityError where it is missing.
 */
export interface ConcurrencyControl {
  /**
   * Sets (or with null, clears) a run-time limit for one key of a queue that wins over the limit
   * the tasks carry; waiting tasks of the key are let through at once when it rises.
   */
  setLimit(queue: string, key: string, limit: number | null): Promise<void>;
  /** The keys of a queue that hold or wait for slots (or have an override), by key. */
  stats(queue: string): Promise<ConcurrencyKeyStats[]>;
}
