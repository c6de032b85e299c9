import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3';

/** The shortest gap between two looks at the change counter right after a change. */
const MIN_INTERVAL_MS = 2;

/**
 * Tells listeners in this process that another process committed to the database file. SQLite's
 * `PRAGMA data_version` changes whenever another connection commits (never for our own writes, which
 * the services announce themselves); reading it costs a few microseconds and no disk access. While
 * someone listens (an idle consumer, a result watcher) it is read on an adaptive timer: every 2 ms
 * after a change, doubling to `maxIntervalMs` while nothing changes. A file-system watch of the
 * database's directory (inotify on Linux) makes it look at once when the file or its WAL is
 * written, so a wake-up usually takes well under a millisecond; the timer is the fallback where
 * such events do not come. Nobody listening: no timer, no watch, no cost.
 */
export class ChangeMonitor {
  private readonly listeners = new Set<() => void>();
  private readonly version: Statement;
  private last: number;
  private interval = MIN_INTERVAL_MS;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private checkQueued = false;
  private announced = false;
  private closed = false;

  /** @param file the database file (`:memory:` has no other process: nothing to watch) */
  constructor(
    db: SqliteDatabase,
    private readonly file: string | undefined,
    private readonly maxIntervalMs: number,
  ) {
    this.version = db.prepare('PRAGMA data_version').pluck();
    this.last = this.read();
  }

  /** Calls `listener` after each commit of another process, until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /**
   * Tells this process's listeners that it wrote (its own commits do not move the counter): the
   * other services on the same handle (another Stem of this process, a consumer of the same broker)
   * look once, after the current job. Calls in one job are coalesced.
   */
  announce(): void {
    if (this.announced || this.listeners.size === 0) return;
    this.announced = true;
    queueMicrotask(() => {
      this.announced = false;
      for (const listener of [...this.listeners]) listener();
    });
  }

  /** Stops for good. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.stop();
  }

  private read(): number {
    try {
      return this.version.get() as number;
    } catch {
      // Busy or closed: treat as a change, so that listeners look for themselves.
      return Number.NaN;
    }
  }

  private start(): void {
    if (this.closed || this.file === undefined) return;
    // Someone starts listening: what changed before counts from now on.
    this.last = this.read();
    this.interval = MIN_INTERVAL_MS;
    this.schedule();
    try {
      const name = basename(this.file);
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === undefined || changed.startsWith(name)) this.queueCheck();
      });
      this.watcher.on('error', () => this.unwatch());
    } catch {
      this.watcher = undefined;
    }
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unwatch();
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), this.interval);
    this.timer.unref();
  }

  private queueCheck(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      if (this.listeners.size === 0) return;
      // The file moved but the counter may not yet (the event can come between a WAL write and its
      // commit): look again soon, backing off from the shortest interval.
      this.check();
      this.interval = MIN_INTERVAL_MS;
      this.schedule();
    });
  }

  private tick(): void {
    this.timer = undefined;
    if (this.listeners.size === 0 || this.closed) return;
    this.interval = this.check() ? MIN_INTERVAL_MS : Math.min(this.interval * 2, this.maxIntervalMs);
    this.schedule();
  }

  /** Reads the counter; on a change tells every listener. True when it changed. */
  private check(): boolean {
    const now = this.read();
    if (now === this.last) return false;
    this.last = now;
    for (const listener of [...this.listeners]) listener();
    return true;
  }
}
