/** Named locks with an owner and a time to live, shared by every process on the same store. */
export interface LockStore {
  /** Takes `key` for `owner` for `ttlMs` if nobody holds it; true when taken. */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Who holds `key`, or null. */
  owner(key: string): Promise<string | null>;
  /** Extends the lock if `owner` still holds it; false otherwise. */
  renew(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `owner` holds it; false otherwise. */
  release(key: string, owner: string): Promise<boolean>;
  /** Releases connections. */
  close(): Promise<void>;
}
