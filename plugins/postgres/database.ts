import type { ColumnType, Generated } from 'kysely';

/** A timestamptz column: read as a Date, written as a Date or a SQL expression. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** A bigint (int8) column: pg returns it as a string to keep its precision. */
type Int8 = ColumnType<string, number | string | bigint, number | string | bigint>;

/** A json column: pg parses it on read; written as a JSON string. */
type Json<T> = ColumnType<T, string, string>;

/** One waiting or leased message of a queue (or one subscriber's copy of a broadcast). */
export interface MessageTable {
  id: Generated<Int8>;
  namespace: string;
  queue: string;
  /** '' for a queue message; the consumer id a broadcast copy is for. */
  subscriber: string;
  task_id: string;
  priority: number;
  /** The encoded envelope; text, not json, so a malformed one can be stored and dead-lettered. */
  payload: string;
  visibility_ms: number;
  not_before: Timestamp;
  locked_until: Timestamp | null;
  locked_by: string | null;
  /** Deliveries since the message was (re)published. */
  deliveries: number;
  /** Incremented on every claim, never reset: the receipt's token against stale holders. */
  lease: number;
  created_at: Generated<Date>;
  /** The task's `queued` status (JSON) when the enqueue wrote it here instead of a `stem_results` row (migration 10). */
  queued_state: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Messages set aside with a reason. */
export interface DeadLetterTable {
  seq: Generated<Int8>;
  namespace: string;
  queue: string;
  id: string;
  reason: string;
  meta: Json<Record<string, unknown>>;
  envelope: Json<unknown> | null;
  dead_at: Timestamp;
}

/** Broadcast channels each consumer is subscribed to. */
export interface SubscriptionTable {
  namespace: string;
  /** The broadcast address, `broadcast://<channel>`. */
  queue: string;
  consumer_id: string;
  seen_at: Timestamp;
}

/** Queues that were published to or consumed from. */
export interface QueueTable {
  namespace: string;
  queue: string;
}

/** Task states, kept until expires_at. */
export interface ResultTable {
  namespace: string;
  id: string;
  state: string;
  status: Json<unknown>;
  expires_at: Timestamp;
  /** The state's generation and attempt: with `state`, its position in the task's order. */
  generation: Generated<number>;
  attempt: Generated<number>;
  /** The status's `updatedAt` (epoch ms), which the listing index orders by (migration 11). */
  updated_at: Generated<number>;
}

/** Groups: ordered members and how many have recorded a result. */
export interface GroupTable {
  namespace: string;
  id: string;
  member_ids: Json<string[]>;
  expected: number;
  completed: number;
  expires_at: Timestamp;
}

/** One recorded member result of a group. */
export interface GroupResultTable {
  namespace: string;
  group_id: string;
  member_id: string;
  status: Json<unknown>;
}

/** Chord callbacks claimed (the barrier). */
export interface ChordTable {
  namespace: string;
  id: string;
  claimed_at: Timestamp;
  expires_at: Timestamp;
  /** The worker that claimed it ('' when unnamed). */
  claimer: Generated<string>;
  /** When the claimer's lease ends; null: no lease, the claim holds until it expires. */
  lease_ends_at: Timestamp | null;
  /** The callback was fired (or the chord's failure written): never taken over. */
  fired: Generated<boolean>;
}

/** Worker heartbeats. */
export interface WorkerTable {
  namespace: string;
  worker_id: string;
  beat: Json<unknown>;
  expires_at: Timestamp;
}

/** Revoked task ids, versioned. */
export interface RevokeTable {
  namespace: string;
  task_id: string;
  version: Int8;
  terminate: boolean;
  reason: string | null;
  revoked_at: Int8;
  expires_at: Int8 | null;
}

/** Beat schedule entries. */
export interface ScheduleTable {
  namespace: string;
  id: string;
  entry: Json<unknown>;
  enabled: boolean;
  next_run_at: Int8 | null;
  version: number;
}

/** Named locks. */
export interface LockTable {
  namespace: string;
  key: string;
  owner: string;
  expires_at: Timestamp;
}

/** Token buckets of the rate limiter. */
export interface RateBucketTable {
  namespace: string;
  key: string;
  tokens: number;
  /** Epoch ms (server clock) of the last refill. */
  refilled_at: number;
  /** Whether the last acquire was allowed: returned by the same statement that decided it. */
  allowed: boolean;
}

/** Every table of the plugin, in one place: the Kysely database type. */
export interface Database {
  stem_messages: MessageTable;
  stem_dead_letters: DeadLetterTable;
  stem_subscriptions: SubscriptionTable;
  stem_queues: QueueTable;
  stem_results: ResultTable;
  stem_groups: GroupTable;
  stem_group_results: GroupResultTable;
  stem_chords: ChordTable;
  stem_workers: WorkerTable;
  stem_revokes: RevokeTable;
  stem_schedules: ScheduleTable;
  stem_locks: LockTable;
  stem_rate_buckets: RateBucketTable;
}
