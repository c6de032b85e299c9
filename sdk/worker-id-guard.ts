import { hostname as osHostname } from 'node:os';
import type { ResultBackend, WorkerHeartbeat } from './contracts/result-backend.js';
import { DuplicateWorkerIdError } from './errors.js';

/** Ids of the workers running in this process, per result backend, and across backends. */
const runningPerBackend = new WeakMap<ResultBackend, Set<string>>();
const runningHere = new Map<string, number>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describe(beat: WorkerHeartbeat): string {
  const ago = Math.max(0, Math.round((Date.now() - beat.at) / 1000));
  return `a live worker (host ${beat.hostname}, pid ${beat.pid}, last heartbeat ${ago}s ago)`;
}

/**
 * True when a heartbeat with our id cannot be a worker that still runs: one of this host whose
 * process is gone (a restart after a crash), or one of this very process that has stopped.
 */
function isStale(beat: WorkerHeartbeat, workerId: string): boolean {
  if (beat.hostname !== osHostname()) return false;
  if (beat.pid === process.pid) return !runningHere.has(workerId);
  return !isAlive(beat.pid);
}

/**
 * Takes `workerId` for a worker about to start, as Celery warns of two nodes with one name: throws
 * DuplicateWorkerIdError when a worker of this process runs with it, or the backend's worker
 * registry holds a live heartbeat of it from another process. A heartbeat left by a crashed
 * process of this host does not count; one from another host counts until it expires. Two workers
 * started in the same instant can both pass (the check is a read, not a lock).
 */
export async function claimWorkerId(backend: ResultBackend, workerId: string): Promise<void> {
  let mine = runningPerBackend.get(backend);
  if (mine === undefined) runningPerBackend.set(backend, (mine = new Set()));
  if (mine.has(workerId)) throw new DuplicateWorkerIdError(workerId, 'another worker of this process');
  mine.add(workerId);
  let beats: WorkerHeartbeat[];
  try {
    beats = await backend.listWorkers();
  } catch {
    beats = []; // The registry cannot be read: start, and let the heartbeat report what is wrong.
  }
  const holder = beats.find((beat) => beat.workerId === workerId && !isStale(beat, workerId));
  if (holder !== undefined) {
    mine.delete(workerId);
    throw new DuplicateWorkerIdError(workerId, describe(holder));
  }
  runningHere.set(workerId, (runningHere.get(workerId) ?? 0) + 1);
}

/**
 * Gives `workerId` back when its worker has stopped: another worker of this process, or one
 * restarted on this host, may take it at once. (Its heartbeat stays until it expires, so a worker
 * with that id on another host waits for that.)
 */
export function releaseWorkerId(backend: ResultBackend, workerId: string): void {
  if (runningPerBackend.get(backend)?.delete(workerId) !== true) return;
  const count = (runningHere.get(workerId) ?? 1) - 1;
  if (count > 0) runningHere.set(workerId, count);
  else runningHere.delete(workerId);
}
