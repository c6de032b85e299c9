/** A revoked task id, versioned so that replicas converge. */
export interface RevokeEntry {
  /** The control namespace it belongs to. */
  namespace: string;
  /** The revoked task id. */
  taskId: string;
  /** Monotonic version; an upsert with a version not above the stored one is ignored. */
  version: number;
  /** Also abort the task if it is running. */
  terminate: boolean;
  /** Why, for people. */
  reason?: string;
  /** Epoch ms when it was revoked. */
  revokedAt: number;
  /** Epoch ms after which the entry may be pruned. */
  expiresAt?: number;
}

/** Persists revokes so that they survive restarts and reach workers that start later. */
export interface RevokeStore {
  /** Inserts or updates entries; stale versions are ignored. Returns the entries that were applied. */
  upsert(entries: readonly RevokeEntry[]): Promise<RevokeEntry[]>;
  /** One entry, or null. */
  get(namespace: string, taskId: string): Promise<RevokeEntry | null>;
  /** A namespace's entries ordered by version, optionally only those above `sinceVersion`. */
  list(namespace: string, options?: { sinceVersion?: number }): Promise<RevokeEntry[]>;
  /** Deletes a namespace's entries whose expiresAt is at or before `now`; returns how many. */
  prune(namespace: string, now: number): Promise<number>;
  /** Releases connections. */
  close(): Promise<void>;
}
