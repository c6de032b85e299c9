import type { Worker } from './worker.js';

/**
 * Stops `worker` gracefully on SIGTERM or SIGINT (running tasks get the grace period, then go
 * back to their queue); a second signal stops it at once. Returns a function that removes the
 * handlers. `onStopped` runs after the worker stopped (the CLI closes Stem and exits there).
 */
export function installShutdownHandlers(worker: Worker, onStopped: () => void | Promise<void> = () => undefined): () => void {
  let signalled = 0;
  const handler = (signal: NodeJS.Signals): void => {
    signalled++;
    if (signalled === 1) {
      process.stderr.write(`${signal} received: finishing running tasks (send again to stop at once)\n`);
      void worker.stop().then(onStopped);
    } else {
      void worker.stop({ graceMs: 0 });
      process.stderr.write(`${signal} received again: returning running tasks to the queue\n`);
    }
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
