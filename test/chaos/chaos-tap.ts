import type { Test } from 'tap';
import { formatSummary, runChaos, type Backend, type ChaosOptions, type FaultName } from './chaos-harness.js';

/**
 * The CI configuration: small, a few strikes, bounded. `npm run test:chaos` runs the full one. The lease is 10 s, not the
 * harness's 2 s: a worker process stalled past its renewals (a loaded CI machine, load 10-15) had its tasks run again
 * elsewhere, a duplicate no fault explains. The timeout is a ceiling for the scenario to finish (5 minutes).
 */
export const SMALL_CHAOS: Partial<ChaosOptions> = {
  tasks: 200,
  workers: 2,
  concurrency: 4,
  faultEveryMs: 700,
  maxStrikes: 3,
  leaseMs: 10_000,
  timeoutMs: 300_000,
};

/** One tap test per fault, each asserting the guarantees on the scenario's summary. */
export function chaosTests(t: Test, backend: Backend, faults: ReadonlyArray<[FaultName, string]>): void {
  for (const [fault, name] of faults) {
    t.test(name, async (t) => {
      const summary = await runChaos({ fault, backend }, SMALL_CHAOS);
      t.comment(formatSummary(summary));
      t.equal(summary.lost, 0, 'no task lost');
      t.equal(summary.completed, summary.enqueued, 'every task completed');
      t.equal(summary.unexplained, 0, 'no duplicate the fault does not explain');
      t.equal(summary.deadLetters, 0, 'no dead letter');
      if (fault === 'sigterm') t.equal(summary.duplicated, 0, 'a graceful stop runs nothing twice');
      if (summary.inFlight !== undefined)
        t.ok(
          summary.duplicated <= summary.inFlight,
          `duplicates (${summary.duplicated}) only among the ${summary.inFlight} tasks in flight at the restart`,
        );
    });
  }
}
