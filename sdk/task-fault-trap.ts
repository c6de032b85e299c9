import { AsyncLocalStorage } from 'node:async_hooks';
import { TaskAsyncError } from './errors.js';

/** What the trap needs of a running task (a TaskRun): fail it with an error that escaped its handler. */
export interface FaultableRun {
  readonly id: string;
  readonly name: string;
  /** Fails the run with `error`; false when it had already finished. */
  fault(error: Error): boolean;
}

/**
 * The async context of a running handler: every callback and promise its code schedules carries
 * the run, so an error that escapes them can be laid at that task's door.
 */
export const taskScope = new AsyncLocalStorage<FaultableRun>();

/** What the trap needs from each running worker. */
export interface FaultTrapHost {
  /** How many tasks run now. */
  runningCount(): number;
  /** The run that runs alone because it was running when a process died before (a suspect), if any. */
  soleSuspect(): FaultableRun | undefined;
  /** The process must die: give back every task held, as fast as it can. */
  abandon(): Promise<void>;
}

/** How long a dying process waits for its workers to give their tasks back. */
const ABANDON_TIMEOUT_MS = 5_000;

type Origin = 'uncaughtException' | 'unhandledRejection';

/**
 * The process-level handlers of running workers ('uncaughtException', 'unhandledRejection'):
 * installed when the first worker starts and removed when the last one stops.
 *
 * - An error raised in a task's async context (a throw in its timer, a promise it left
 *   unawaited) fails that task (its retry policy applies); the process lives.
 * - An error outside any task is the application's: when the application listens for it itself,
 *   its handler decides (as Node does when a listener exists); when nobody else listens, the
 *   process dies as Node would have made it die (exit 1), but first every worker gives its tasks
 *   back as new messages, so that they do not count as redeliveries. The tasks that were running
 *   go back marked as suspects, and a suspect later runs alone, so that a second such error is
 *   laid at its door instead of taking down its neighbours again.
 */
class TaskFaultTrap {
  private readonly hosts = new Set<FaultTrapHost>();
  private dying = false;
  private readonly onException = (error: unknown, origin: string): void =>
    this.caught(error, origin === 'unhandledRejection' ? 'unhandledRejection' : 'uncaughtException', 'uncaughtException');
  private readonly onRejection = (reason: unknown): void => this.caught(reason, 'unhandledRejection', 'unhandledRejection');

  attach(host: FaultTrapHost): void {
    if (this.hosts.size === 0) {
      process.on('uncaughtException', this.onException);
      process.on('unhandledRejection', this.onRejection);
    }
    this.hosts.add(host);
  }

  detach(host: FaultTrapHost): void {
    if (!this.hosts.delete(host) || this.hosts.size > 0) return;
    process.off('uncaughtException', this.onException);
    process.off('unhandledRejection', this.onRejection);
  }

  /** `origin`: how the error arose; `event`: the process event that reported it. */
  private caught(error: unknown, origin: Origin, event: Origin): void {
    const run = taskScope.getStore() ?? this.suspect();
    if (run !== undefined) {
      if (!run.fault(new TaskAsyncError(run.id, origin, error))) {
        // Its result is already recorded: the stray error cannot change it, and must not kill the process.
        process.emitWarning(
          `task ${run.id} ("${run.name}") threw after it had finished (${describe(error)}); ignored`,
          'StemWorkerWarning',
        );
      }
      return;
    }
    if (this.othersListen(event)) return;
    if (event === 'unhandledRejection') {
      if (rejectionsOnlyWarn()) {
        process.emitWarning(`unhandled promise rejection outside any task: ${describe(error)}`, 'StemWorkerWarning');
        return;
      }
      if (this.othersListen('uncaughtException')) {
        // What Node does with an unhandled rejection nobody listens for: raise it as an uncaught exception.
        (process.emit as (event: string, ...args: unknown[]) => boolean)('uncaughtException', error, 'unhandledRejection');
        return;
      }
    }
    void this.die(error, origin);
  }

  /** The one task running in this process, when it is a suspect running alone. */
  private suspect(): FaultableRun | undefined {
    let running = 0;
    let suspect: FaultableRun | undefined;
    for (const host of this.hosts) {
      running += host.runningCount();
      suspect ??= host.soleSuspect();
    }
    return running === 1 ? suspect : undefined;
  }

  private othersListen(event: Origin): boolean {
    const ours = event === 'uncaughtException' ? this.onException : this.onRejection;
    return process.listeners(event as 'uncaughtException').some((listener) => listener !== ours);
  }

  private async die(error: unknown, origin: Origin): Promise<void> {
    if (this.dying) return;
    this.dying = true;
    const what = origin === 'unhandledRejection' ? 'an unhandled promise rejection' : 'an uncaught exception';
    process.stderr.write(
      `${what} outside any task; the workers give their tasks back, then the process ` +
        `exits:\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, ABANDON_TIMEOUT_MS).unref());
    await Promise.race([Promise.allSettled([...this.hosts].map((host) => host.abandon())), timeout]);
    process.exit(1);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** True when Node was told to only warn about (or ignore) unhandled rejections. */
function rejectionsOnlyWarn(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((flag) => /^--unhandled-rejections=(warn|none|warn-with-error-code)$/.test(flag));
}

/** The one trap of this process, shared by its workers. */
export const faultTrap = new TaskFaultTrap();
