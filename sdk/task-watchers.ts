import type { TaskStatus, Unsubscribe } from './contracts/result-backend.js';

/** A listener of one task's states. */
export type TaskStatusListener = (status: TaskStatus) => void;

/**
 * The watchers of a result backend, by task id: what `watch` registers and a write notifies.
 * Each watch gets its own entry, so the same function watched twice is unsubscribed once per watch.
 */
export class TaskWatchers {
  private readonly byId = new Map<string, Set<TaskStatusListener>>();

  /** Registers `listener` for `id`; the returned function removes it (and calls `onEmpty` when it was the last). */
  add(id: string, listener: TaskStatusListener, onEmpty?: (id: string) => void): Unsubscribe {
    const wrapped: TaskStatusListener = (status) => listener(status);
    let listeners = this.byId.get(id);
    if (listeners === undefined) {
      listeners = new Set();
      this.byId.set(id, listeners);
    }
    listeners.add(wrapped);
    return async () => {
      const current = this.byId.get(id);
      if (current === undefined) return;
      current.delete(wrapped);
      if (current.size === 0) {
        this.byId.delete(id);
        onEmpty?.(id);
      }
    };
  }

  /** The listeners of `id`, if any. */
  get(id: string): ReadonlySet<TaskStatusListener> | undefined {
    return this.byId.get(id);
  }

  /** True when someone watches `id`. */
  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Every watched id. */
  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** Drops every watcher. */
  clear(): void {
    this.byId.clear();
  }
}
