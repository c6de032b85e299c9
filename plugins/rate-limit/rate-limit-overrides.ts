import type { RevokeStore } from '../../sdk/contracts/revoke-store.js';

const CLEARED = '';
let lastVersion = 0;

/**
 * Run-time rate limits set over control, kept in the revoke store under the reserved namespace
 * `<namespace>.rate-limits` (entry id: the task name, `reason`: the rate, or '' when cleared) so
 * workers that start later use them too. A stored rate beats the task's `rateLimit` option.
 */
export class RateLimitOverrides {
  private readonly namespace: string;
  private rates = new Map<string, string | null>();

  constructor(controlNamespace: string) {
    this.namespace = `${controlNamespace}.rate-limits`;
  }

  /** The override of `task`: a rate, null when cleared to "no limit", undefined when none is set. */
  get(task: string): string | null | undefined {
    return this.rates.get(task);
  }

  /** Sets (or, with undefined, removes) an override in this process only. */
  apply(task: string, spec: string | null | undefined): void {
    if (spec === undefined) this.rates.delete(task);
    else this.rates.set(task, spec);
  }

  /** Stores an override for every worker: a rate, null for "no limit", undefined to go back to the task's option. */
  async store(store: RevokeStore, task: string, spec: string | null | undefined): Promise<void> {
    const now = Date.now();
    lastVersion = Math.max(lastVersion + 1, now * 1_000);
    const reason = spec === undefined ? CLEARED : spec === null ? 'none' : spec;
    await store.upsert([{ namespace: this.namespace, taskId: task, version: lastVersion, terminate: false, reason, revokedAt: now }]);
    this.apply(task, spec);
  }

  /** Reads every stored override. */
  async load(store: RevokeStore): Promise<void> {
    const rates = new Map<string, string | null>();
    for (const entry of await store.list(this.namespace)) {
      if (entry.reason === undefined || entry.reason === CLEARED) continue;
      rates.set(entry.taskId, entry.reason === 'none' ? null : entry.reason);
    }
    this.rates = rates;
  }
}
