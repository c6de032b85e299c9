import type { LockStore } from '../contracts/lock-store.js';
import { ClosedError } from '../errors.js';

interface Lock {
  owner: string;
  expiresAt: number;
}

/** The embedded lock store: named locks with owners and expiry, in this process. */
export class MemoryLockStore implements LockStore {
  private readonly locks = new Map<string, Lock>();
  private closed = false;

  /** Takes `key` when nobody (the same owner included) holds it. */
  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = Date.now();
    if (this.held(key, now) !== undefined) return false;
    this.locks.set(key, { owner, expiresAt: now + ttlMs });
    return true;
  }

  /** Who holds `key`, or null. */
  async owner(key: string): Promise<string | null> {
    this.assertOpen();
    return this.held(key, Date.now())?.owner ?? null;
  }

  /** Extends the lock to `ttlMs` from now if `owner` still holds it. */
  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = Date.now();
    const lock = this.held(key, now);
    if (lock === undefined || lock.owner !== owner) return false;
    lock.expiresAt = now + ttlMs;
    return true;
  }

  /** Releases the lock if `owner` holds it. */
  async release(key: string, owner: string): Promise<boolean> {
    this.assertOpen();
    const lock = this.held(key, Date.now());
    if (lock === undefined || lock.owner !== owner) return false;
    this.locks.delete(key);
    return true;
  }

  /** Forgets every lock; later calls throw ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.locks.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory lock store');
  }

  /** The live lock of `key`; an expired one is deleted on sight. */
  private held(key: string, now: number): Lock | undefined {
    const lock = this.locks.get(key);
    if (lock === undefined || lock.expiresAt > now) return lock;
    this.locks.delete(key);
    return undefined;
  }
}
