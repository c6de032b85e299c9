import type { RevokeEntry, RevokeStore } from '../contracts/revoke-store.js';
import { ClosedError } from '../errors.js';

/** The embedded revoke store: versioned revokes per control namespace, in this process. */
export class MemoryRevokeStore implements RevokeStore {
  private readonly namespaces = new Map<string, Map<string, RevokeEntry>>();
  private closed = false;

  /** Applies entries whose version is above the stored one (in order); returns those applied. */
  async upsert(entries: readonly RevokeEntry[]): Promise<RevokeEntry[]> {
    this.assertOpen();
    const applied: RevokeEntry[] = [];
    for (const entry of entries) {
      let entries = this.namespaces.get(entry.namespace);
      if (entries === undefined) {
        entries = new Map();
        this.namespaces.set(entry.namespace, entries);
      }
      const stored = entries.get(entry.taskId);
      if (stored !== undefined && stored.version >= entry.version) continue;
      entries.set(entry.taskId, { ...entry });
      applied.push({ ...entry });
    }
    return applied;
  }

  /** One entry, or null. */
  async get(namespace: string, taskId: string): Promise<RevokeEntry | null> {
    this.assertOpen();
    const entry = this.namespaces.get(namespace)?.get(taskId);
    return entry === undefined ? null : { ...entry };
  }

  /** A namespace's entries by version (then task id), only those above `sinceVersion` if given. */
  async list(namespace: string, options: { sinceVersion?: number } = {}): Promise<RevokeEntry[]> {
    this.assertOpen();
    const since = options.sinceVersion ?? -Infinity;
    return [...(this.namespaces.get(namespace)?.values() ?? [])]
      .filter((entry) => entry.version > since)
      .sort((a, b) => a.version - b.version || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))
      .map((entry) => ({ ...entry }));
  }

  /** Deletes the namespace's entries that expired at or before `now`; returns how many. */
  async prune(namespace: string, now: number): Promise<number> {
    this.assertOpen();
    const entries = this.namespaces.get(namespace);
    if (entries === undefined) return 0;
    let count = 0;
    for (const [taskId, entry] of entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
        entries.delete(taskId);
        count++;
      }
    }
    return count;
  }

  /** Forgets everything; later calls throw ClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.namespaces.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('memory revoke store');
  }
}
