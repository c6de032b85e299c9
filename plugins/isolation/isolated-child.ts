import { type ChildProcess, spawn } from 'node:child_process';
import { Worker as Thread } from 'node:worker_threads';
import { BOOT_ENV, type ChildBoot, type FromChild, type IsolateMode, type ToChild } from './child-protocol.js';
import type { BootScript } from './child-boot.js';

/** How a child ended: its exit code or the signal that killed it, and what it said about it. */
export interface ChildExit {
  code: number | null;
  signal: string | null;
  detail?: string;
}

/** What a child is started with. */
export interface ChildSpawnOptions {
  mode: IsolateMode;
  boot: ChildBoot;
  script: BootScript;
  /** Node options for the child (default: the parent's, without --inspect). */
  execArgv: string[];
  /** Heap limit of a thread, in MB (`resourceLimits.maxOldGenerationSizeMb`). */
  maxOldGenerationSizeMb?: number;
}

/** How much of a child process's stderr is kept to say why it died. */
const STDERR_TAIL = 16_384;
/** How long a dead child's stderr may take to close before its exit is reported without it. */
const STDERR_GRACE_MS = 2_000;

/** What a signal that killed a child means, in words a task's error can carry. */
const SIGNAL_MEANINGS: Record<string, string> = {
  SIGSEGV: 'a segmentation fault: a native crash, e.g. in an addon',
  SIGBUS: 'a bus error: a native crash, e.g. in an addon',
  SIGILL: 'an illegal instruction: a native crash',
  SIGFPE: 'an arithmetic fault in native code',
  SIGABRT: 'aborted: a fatal error in Node or V8, or abort() in native code',
  SIGKILL: 'killed: by kill -9, or by the system when memory ran out',
  SIGTERM: 'terminated by a signal from outside the worker',
};

function signalMeaning(signal: string | null): string | undefined {
  return signal === null ? undefined : SIGNAL_MEANINGS[signal];
}

/** The fatal error Node or V8 printed as the process died (`FATAL ERROR: Reached heap limit … JavaScript heap out of memory`). */
function fatalError(stderr: string): string | undefined {
  const line = /(?:^|\n)[^\n]*(FATAL ERROR: [^\n]*)/.exec(stderr)?.[1]?.trim();
  if (line === undefined) return undefined;
  return /out of memory/i.test(line) ? `out of memory: ${line}` : line;
}

/** Node options a child must not inherit: a second inspector on the same port would not start. */
const NOT_INHERITED = /^--(inspect|debug)/;

/** The parent's Node options, as a child takes them. */
export function inheritedExecArgv(): string[] {
  return process.execArgv.filter((arg) => !NOT_INHERITED.test(arg));
}

/**
 * One child: a worker thread or a child process running `child-main`, one task at a time. The
 * parent holds it unreferenced, so an idle pool never keeps the process alive.
 */
export class IsolatedChild {
  /** `thread:<threadId>` or `process:<pid>`: what stats and tests count. */
  readonly id: string;
  /** Tasks it ran. */
  tasks = 0;
  /** Memory it reported after its last task. */
  memory = { rss: 0, heapUsed: 0 };
  /** Resolves when it has loaded its runtime and setup modules. */
  readonly ready: Promise<void>;
  /** Resolves when it has exited. */
  readonly exited: Promise<ChildExit>;
  private listener: ((message: FromChild) => void) | undefined;
  private readonly thread: Thread | undefined;
  private readonly process: ChildProcess | undefined;
  private alive = true;

  constructor(readonly options: ChildSpawnOptions) {
    let resolveReady!: () => void;
    let rejectReady!: (error: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // A child that never became ready rejects `ready`; nobody may be waiting yet.
    this.ready.catch(() => undefined);
    let resolveExit!: (exit: ChildExit) => void;
    this.exited = new Promise<ChildExit>((resolve) => (resolveExit = resolve));
    let detail: string | undefined;
    const onMessage = (message: FromChild): void => {
      if (message.t === 'ready') resolveReady();
      else this.listener?.(message);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      this.alive = false;
      detail ??= signalMeaning(signal);
      rejectReady(
        new Error(
          `the ${options.mode} exited before it was ready (code ${code}${signal ? `, ${signal}` : ''}${detail ? `: ${detail}` : ''})`,
        ),
      );
      resolveExit({ code, signal, detail });
    };
    if (options.mode === 'thread') {
      const thread = new Thread(options.script.thread, {
        eval: true,
        workerData: options.boot,
        execArgv: options.execArgv,
        resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
      });
      this.thread = thread;
      this.id = `thread:${thread.threadId}`;
      thread.on('message', onMessage);
      // An error that ended the thread (uncaught, out of memory: ERR_WORKER_OUT_OF_MEMORY): kept to say why it exited.
      thread.on('error', (error: Error) => (detail = `${(error as { code?: string }).code ?? error.name}: ${error.message}`));
      thread.on('exit', (code) => onExit(code, null));
      thread.unref();
    } else {
      // stderr is piped, not inherited, so that what Node or V8 prints as the process dies (`FATAL
      // ERROR: … JavaScript heap out of memory`) can say why it died; it is passed on as it comes.
      const child = spawn(process.execPath, [...options.execArgv, '--input-type=module', '-e', options.script.process], {
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        serialization: 'advanced',
        env: { ...process.env, [BOOT_ENV]: JSON.stringify(options.boot) },
      });
      this.process = child;
      this.id = `process:${child.pid}`;
      let stderrTail = '';
      let stderrClosed = false;
      const stderr = child.stderr!;
      stderr.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk);
        stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
      });
      stderr.on('error', () => undefined);
      const stderrDone = new Promise<void>((resolve) =>
        stderr.once('close', () => {
          stderrClosed = true;
          resolve();
        }),
      );
      child.on('message', onMessage as (message: unknown) => void);
      child.on('error', (error: Error) => (detail = error.message));
      child.on('exit', (code, signal) => {
        this.alive = false;
        // Its last words may still be in the pipe: read them (for a moment at most: a grandchild may hold stderr open).
        const settle = (): void => {
          detail ??= fatalError(stderrTail);
          onExit(code, signal);
        };
        if (stderrClosed) settle();
        else {
          const wait = setTimeout(settle, STDERR_GRACE_MS);
          void stderrDone.then(() => {
            clearTimeout(wait);
            settle();
          });
        }
      });
      child.unref();
      (stderr as { unref?: () => void }).unref?.();
      (child.channel as { unref?: () => void } | undefined)?.unref?.();
    }
  }

  /** Whether it still runs. */
  get running(): boolean {
    return this.alive;
  }

  /** Holds the parent's event loop open while it runs a task, and lets it go when idle. */
  hold(busy: boolean): void {
    if (this.thread) {
      if (busy) this.thread.ref();
      else this.thread.unref();
    } else if (this.process) {
      const channel = this.process.channel as { ref?: () => void; unref?: () => void } | undefined;
      const stderr = this.process.stderr as { ref?: () => void; unref?: () => void } | null;
      if (busy) {
        this.process.ref();
        channel?.ref?.();
        stderr?.ref?.();
      } else {
        this.process.unref();
        channel?.unref?.();
        stderr?.unref?.();
      }
    }
  }

  /** Where its messages go (one task's runner at a time). */
  listen(listener: ((message: FromChild) => void) | undefined): void {
    this.listener = listener;
  }

  /** Sends a message; false when the child is gone. */
  send(message: ToChild): boolean {
    if (!this.alive) return false;
    try {
      if (this.thread) this.thread.postMessage(message);
      else this.process?.send(message);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops it now, whatever it runs (a CPU-bound loop included). */
  kill(): Promise<ChildExit> {
    if (this.alive) {
      // Held until it has exited, so that whoever awaits this (a closing Stem) sees it go.
      this.hold(true);
      if (this.thread) void this.thread.terminate();
      else this.process?.kill('SIGKILL');
    }
    return this.exited;
  }
}
