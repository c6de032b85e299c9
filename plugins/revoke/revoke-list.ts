import type { RevokeEntry, RevokeStore } from '../../sdk/contracts/revoke-store.js';

/**
 * Versions come from the revoking machine's clock, so a revoke can arrive with a version below one
 * already seen; each sync looks back this far (in version units: ms × 1000) to catch it.
 */
const CLOCK_SKEW_VERSIONS = 5 * 60_000 * 1_000;
const PRUNE_EVERY_MS = 3_600_000;

let lastVersion = 0;

/** A revoke version: above every earlier one of this process, ordered by wall clock across machines. */
export function nextRevokeVersion(): number {
  lastVersion = Math.max(lastVersion + 1, Date.now() * 1_000);
  return lastVersion;
}

/**
 * The revoked task ids of one control namespace as a worker process knows them: synced from the
 * revoke store (at start, periodically, and when a revoke request arrives) so that a membership
 * check on the dispatch path is a map lookup, never a round trip.
 */
export class RevokeList {
  private readonly entries = new Map<string, RevokeEntry>();
  private highestVersion: number | undefined;
  private prunedAt = 0;

  constructor(
    private readonly store: () => RevokeStore,
    private readonly namespace: string,
  ) {}

  /** True when `taskId` is revoked (and the revoke has not expired). */
  has(taskId: string): boolean {
    const entry = this.entries.get(taskId);
    if (entry === undefined) return false;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(taskId);
      return false;
    }
    return true;
  }

  /** Adds entries (from the store or a request); returns those that are new or newer than known. */
  learn(entries: readonly RevokeEntry[]): RevokeEntry[] {
    const fresh: RevokeEntry[] = [];
    for (const entry of entries) {
      if (entry.namespace !== this.namespace) continue;
      const known = this.entries.get(entry.taskId);
      if (known !== undefined && known.version >= entry.version) continue;
      this.entries.set(entry.taskId, entry);
      this.highestVersion = Math.max(this.highestVersion ?? entry.version, entry.version);
      fresh.push(entry);
    }
    return fresh;
  }

  /** Reads what the store has beyond what is known; returns the new entries. */
  async sync(): Promise<RevokeEntry[]> {
    const store = this.store();
    const now = Date.now();
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.prunedAt = now;
      await store.prune(this.namespace, now);
    }
    const since = this.highestVersion === undefined ? undefined : this.highestVersion - CLOCK_SKEW_VERSIONS;
    return this.learn(await store.list(this.namespace, since === undefined ? {} : { sinceVersion: since }));
  }
}
