import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DrainReport, Servers, SystemId } from './systems/bench-system.js';

/** A request to a child process. */
export type ChildRequest =
  | { id: number; op: 'enqueueOne'; n: number; from: number }
  | { id: number; op: 'enqueueBulk'; n: number; from: number; batch: number }
  | { id: number; op: 'roundTrips'; warmup: number; samples: number }
  | { id: number; op: 'enqueueDelayed'; n: number; leadMs: number; spreadMs: number; measured: boolean }
  | { id: number; op: 'startedCount' }
  | { id: number; op: 'drain'; n: number; concurrency: number }
  | { id: number; op: 'serve'; concurrency: number }
  | { id: number; op: 'stopServing' }
  | { id: number; op: 'close' };

/** A child's answer (id 0: the child is ready). */
export type ChildReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

/** The parent's handle on one child process (one role of one system). */
export class ChildLink {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private exited = false;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (reply: ChildReply) => {
      const waiter = this.waiting.get(reply.id);
      if (waiter === undefined) return;
      this.waiting.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${label}: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`${label} exited (${signal ?? code})`));
      this.waiting.clear();
    });
  }

  /** Forks `child.ts <role> <system>` under tsx and waits until it has connected. */
  static async spawn(role: 'producer' | 'worker', system: SystemId, servers: Servers): Promise<ChildLink> {
    const child = fork(CHILD, [role, system], {
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_FLAGS ? process.env.BENCH_CHILD_FLAGS.split(' ') : [])],
      env: { ...process.env, BENCH_CHILD_SERVERS: JSON.stringify(servers) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const link = new ChildLink(`${system} ${role}`, child);
    await new Promise<void>((resolve, reject) => {
      link.waiting.set(0, { resolve: () => resolve(), reject });
    });
    return link;
  }

  /** The OS process id (to read its memory from outside if needed). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private request<T>(request: WithoutId<ChildRequest>): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.label} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ ...request, id });
    });
  }

  /** Awaited single enqueues; resolves with the elapsed ms. */
  enqueueOne(n: number, from = 0): Promise<number> {
    return this.request({ op: 'enqueueOne', n, from });
  }

  /** Bulk enqueues in batches; resolves with the elapsed ms. */
  enqueueBulk(n: number, batch: number, from = 0): Promise<number> {
    return this.request({ op: 'enqueueBulk', n, from, batch });
  }

  /** Sequential enqueue → outcome round trips; resolves with the measured ones (ms). */
  roundTrips(warmup: number, samples: number): Promise<number[]> {
    return this.request({ op: 'roundTrips', warmup, samples });
  }

  /**
   * Enqueues n delayed tasks in one bulk call, due from `leadMs` to `leadMs + spreadMs` from now
   * in a shuffled order; each payload's t0 is its due time, so the worker's start latency is its
   * lateness. Unmeasured ones (warm-up) get negative indexes. Resolves with the epoch ms the last is due.
   */
  enqueueDelayed(n: number, leadMs: number, spreadMs: number, measured: boolean): Promise<number> {
    return this.request({ op: 'enqueueDelayed', n, leadMs, spreadMs, measured });
  }

  /** How many measured tasks a serving worker has started so far. */
  startedCount(): Promise<number> {
    return this.request({ op: 'startedCount' });
  }

  /** Processes a pre-filled queue of n tasks. */
  drain(n: number, concurrency: number): Promise<DrainReport> {
    return this.request({ op: 'drain', n, concurrency });
  }

  /** Starts a long-lived worker (latency runs) that records handler start latencies. */
  serve(concurrency: number): Promise<void> {
    return this.request({ op: 'serve', concurrency });
  }

  /** Stops it; resolves with the enqueue → handler start latencies of measured tasks (ms). */
  stopServing(): Promise<number[]> {
    return this.request({ op: 'stopServing' });
  }

  /** Closes the system and lets the process end. */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request({ op: 'close' }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
