import type { IsolateMode } from './child-protocol.js';
import { IsolatedChild, type ChildSpawnOptions } from './isolated-child.js';

/** How a pool sizes and recycles its children. */
export interface PoolLimits {
  /** Children kept started even when idle (warm). */
  min: number;
  /** Children at most; tasks beyond wait for one. */
  max: number;
  /** A child is replaced after this many tasks (Infinity: never). */
  maxTasksPerChild: number;
  /** A child is replaced after a task that left it above this many bytes (RSS for a process, heap for a thread). */
  maxMemoryPerChild: number;
}

/** What a pool counts. */
export interface PoolStats {
  /** Children started. */
  started: number;
  /** Children alive now. */
  alive: number;
  /** Children running a task now. */
  busy: number;
  /** Children replaced after maxTasksPerChild tasks. */
  recycledMaxTasks: number;
  /** Children replaced after going over maxMemoryPerChild. */
  recycledMaxMemory: number;
  /** Children that exited or crashed while running a task. */
  crashed: number;
  /** Children terminated because their task was aborted (hard time limit, revoke, shutdown). */
  terminated: number;
  /** Children that failed to start. */
  failedStarts: number;
  /** Every child id seen, in start order (the last 1000). */
  children: string[];
  /** The ids of the children running a task now. */
  running: string[];
}

/** Why a child leaves the pool. */
export type Retirement = 'crashed' | 'terminated';

interface Waiter {
  resolve: (child: IsolatedChild) => void;
  reject: (error: Error) => void;
}

const KEPT_IDS = 1000;

/**
 * The children of one mode: hands an idle child to each task (starting one when under `max`),
 * takes it back after the task, and replaces it when it ran `maxTasksPerChild` tasks, grew over
 * `maxMemoryPerChild`, crashed or was terminated; keeps `min` children warm.
 */
export class ChildPool {
  private readonly idle: IsolatedChild[] = [];
  private readonly busy = new Set<IsolatedChild>();
  private starting = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  /** Starts that failed in a row: warming stops at three, so a broken setup module does not spin. */
  private failedInARow = 0;
  readonly counts: PoolStats = {
    started: 0,
    alive: 0,
    busy: 0,
    recycledMaxTasks: 0,
    recycledMaxMemory: 0,
    crashed: 0,
    terminated: 0,
    failedStarts: 0,
    children: [],
    running: [],
  };

  constructor(
    readonly mode: IsolateMode,
    readonly limits: PoolLimits,
    private readonly spawnOptions: () => ChildSpawnOptions,
  ) {}

  /** What it counts now. */
  stats(): PoolStats {
    return {
      ...this.counts,
      alive: this.idle.length + this.busy.size,
      busy: this.busy.size,
      children: [...this.counts.children],
      running: [...this.busy].map((child) => child.id),
    };
  }

  /** Starts children up to `min`. */
  warm(): void {
    if (this.closed || this.failedInARow >= 3) return;
    while (this.idle.length + this.busy.size + this.starting < this.limits.min) this.spawn();
  }

  /** A child for one task: an idle one, a new one, or the next one freed. */
  acquire(): Promise<IsolatedChild> {
    if (this.closed) return Promise.reject(new Error(`the ${this.mode} pool is closed`));
    return new Promise<IsolatedChild>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.dispatch();
    });
  }

  /** Takes a child back after its task ended normally; replaces it when a recycling limit says so. */
  release(child: IsolatedChild): void {
    this.busy.delete(child);
    child.hold(false);
    if (!child.running) {
      this.dispatch();
      return;
    }
    if (child.tasks >= this.limits.maxTasksPerChild) {
      this.counts.recycledMaxTasks++;
      void child.kill();
    } else if (this.memoryOf(child) > this.limits.maxMemoryPerChild) {
      this.counts.recycledMaxMemory++;
      void child.kill();
    } else if (!this.closed) {
      this.idle.push(child);
    } else {
      void child.kill();
    }
    this.dispatch();
    this.warm();
  }

  /** A child that crashed during its task, or that is being terminated because its task was aborted. */
  retire(child: IsolatedChild, why: Retirement): void {
    this.busy.delete(child);
    child.hold(false);
    this.counts[why]++;
    void child.kill();
    this.dispatch();
    this.warm();
  }

  /** Terminates every child; waiting tasks are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`the ${this.mode} pool was closed`));
    const children = [...this.idle.splice(0), ...this.busy];
    this.busy.clear();
    await Promise.all(children.map((child) => child.kill()));
  }

  private memoryOf(child: IsolatedChild): number {
    return this.mode === 'process' ? child.memory.rss : child.memory.heapUsed;
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const child = this.idle.pop();
      if (child === undefined) break;
      if (!child.running) continue;
      this.busy.add(child);
      child.hold(true);
      this.waiters.shift()!.resolve(child);
    }
    while (this.waiters.length > this.starting && this.idle.length + this.busy.size + this.starting < this.limits.max && !this.closed) {
      this.spawn();
    }
  }

  private spawn(): void {
    this.starting++;
    this.counts.started++;
    const child = new IsolatedChild(this.spawnOptions());
    this.counts.children.push(child.id);
    if (this.counts.children.length > KEPT_IDS) this.counts.children.shift();
    child.exited.then(() => {
      const at = this.idle.indexOf(child);
      if (at >= 0) this.idle.splice(at, 1);
      if (!this.busy.has(child)) {
        this.dispatch();
        this.warm();
      }
    });
    child.ready.then(
      () => {
        this.starting--;
        this.failedInARow = 0;
        if (this.closed) {
          void child.kill();
          return;
        }
        this.idle.push(child);
        this.dispatch();
      },
      (error: Error) => {
        this.starting--;
        this.counts.failedStarts++;
        this.failedInARow++;
        // A child that cannot start (a setup module throws) fails the task that waited for it,
        // instead of leaving it waiting while children fail to start one after another.
        const waiter = this.waiters.shift();
        waiter?.reject(error);
        this.dispatch();
      },
    );
  }
}
