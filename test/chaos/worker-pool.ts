import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER_SCRIPT = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One worker process. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves once it printed "ready"; rejects if it exits first. */
  ready: Promise<void>;
  /** Resolves with its exit code (128 + n for a signal). */
  exited: Promise<number>;
  /** The last few kilobytes it printed. */
  output(): string;
  /** True once ready and until it exits. */
  isReady(): boolean;
}

const everyPool = new Set<WorkerPool>();
// A harness that dies (an exception, Ctrl-C) must not leave workers behind.
process.once('exit', () => {
  for (const pool of everyPool) pool.killAllNow();
});

/** The worker processes of one scenario: started, killed, replaced and stopped by the harness. */
export class WorkerPool {
  private readonly live = new Set<WorkerProcess>();
  /** Pids killed with SIGKILL by the harness. */
  readonly killed = new Set<number>();

  constructor(private readonly env: Record<string, string>) {
    everyPool.add(this);
  }

  /** Processes alive now. */
  get processes(): WorkerProcess[] {
    return [...this.live];
  }

  /** Starts `count` workers and waits until each is ready. */
  async start(count: number): Promise<WorkerProcess[]> {
    const started = Array.from({ length: count }, () => this.spawnOne());
    await Promise.all(started.map((worker) => worker.ready));
    return started;
  }

  /** How many workers are ready and alive. */
  readyCount(): number {
    return this.processes.filter((worker) => worker.isReady()).length;
  }

  /** SIGKILLs one random ready worker and starts a replacement (not awaited); returns the pid killed. */
  killRandom(): number | undefined {
    const victims = this.processes.filter((worker) => worker.isReady());
    const victim = victims[Math.floor(Math.random() * victims.length)];
    if (victim === undefined) return undefined;
    this.killed.add(victim.pid);
    victim.child.kill('SIGKILL');
    const replacement = this.spawnOne();
    replacement.ready.catch(() => undefined);
    return victim.pid;
  }

  /** Sends SIGTERM to every live worker and waits until all have exited; returns their exit codes. */
  async terminateAll(): Promise<number[]> {
    const workers = this.processes;
    for (const worker of workers) worker.child.kill('SIGTERM');
    return Promise.all(workers.map((worker) => worker.exited));
  }

  /** Graceful stop of everything, then SIGKILL for whatever is still alive after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    const workers = this.processes;
    for (const worker of workers) worker.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killAllNow(), graceMs);
    await Promise.all(workers.map((worker) => worker.exited));
    clearTimeout(timer);
    everyPool.delete(this);
  }

  /** SIGKILLs every live worker at once (cleanup). */
  killAllNow(): void {
    for (const worker of this.live) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  }

  private spawnOne(): WorkerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const append = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    let ready_ = false;
    const exited = new Promise<number>((resolve) =>
      child.once('exit', (code, signal) => {
        ready_ = false;
        resolve(code ?? (signal ? 128 : 1));
      }),
    );
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (): void => {
        if (output.includes('chaos-worker ready')) {
          child.stdout!.off('data', onData);
          ready_ = child.exitCode === null;
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      void exited.then((code) => reject(new Error(`a chaos worker exited (${code}) before it was ready:\n${output}`)));
    });
    const worker: WorkerProcess = { child, pid: child.pid!, ready, exited, output: () => output, isReady: () => ready_ };
    this.live.add(worker);
    void exited.then(() => this.live.delete(worker));
    return worker;
  }
}
