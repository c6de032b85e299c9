import type { RevokeStore } from '../../sdk/contracts/revoke-store.js';

const PAUSED = 'paused';
const RESUMED = 'resumed';
/** How long a resume is remembered (it only has to outrank the pause it ends). */
const RESUME_TOMBSTONE_MS = 86_400_000;

let lastVersion = 0;

/** A version above every earlier one of this process and, across machines, ordered by wall clock. */
function nextVersion(): number {
  lastVersion = Math.max(lastVersion + 1, Date.now() * 1_000);
  return lastVersion;
}

/**
 * Cluster-wide queue pauses, kept in the revoke store under the reserved namespace
 * `<namespace>.queue-pauses` (one entry per queue), so a worker that starts later stays off a
 * paused queue. The entry's `reason` is `paused` or `resumed`.
 */
export class QueuePauses {
  private readonly namespace: string;

  constructor(
    private readonly store: RevokeStore,
    controlNamespace: string,
  ) {
    this.namespace = `${controlNamespace}.queue-pauses`;
  }

  /** Records that `queue` is paused (true) or resumed (false) for every worker. */
  async set(queue: string, paused: boolean): Promise<void> {
    const now = Date.now();
    await this.store.upsert([
      {
        namespace: this.namespace,
        taskId: queue,
        version: nextVersion(),
        terminate: false,
        reason: paused ? PAUSED : RESUMED,
        revokedAt: now,
        ...(paused ? {} : { expiresAt: now + RESUME_TOMBSTONE_MS }),
      },
    ]);
  }

  /** The queues paused now. */
  async paused(): Promise<Set<string>> {
    const entries = await this.store.list(this.namespace);
    return new Set(entries.filter((entry) => entry.reason === PAUSED).map((entry) => entry.taskId));
  }

  /** Forgets resumes that no longer matter. */
  async prune(): Promise<void> {
    await this.store.prune(this.namespace, Date.now());
  }
}
