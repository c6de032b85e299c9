import { ConfigError, UnknownTaskError } from './errors.js';
import type { TaskDefinition } from './task.js';

/** The tasks a Stem instance knows by name. */
export class TaskRegistry {
  private readonly tasks = new Map<string, TaskDefinition>();

  constructor(tasks: Iterable<TaskDefinition> = []) {
    for (const task of tasks) this.register(task);
  }

  /** Adds a task; registering a different definition under a taken name is an error. */
  register(task: TaskDefinition): void {
    const existing = this.tasks.get(task.name);
    if (existing !== undefined && existing !== task) {
      throw new ConfigError(`two tasks are named "${task.name}": task names must be unique`);
    }
    this.tasks.set(task.name, task);
  }

  /** The task with this name, or undefined. */
  find(name: string): TaskDefinition | undefined {
    return this.tasks.get(name);
  }

  /** The task with this name; throws UnknownTaskError naming the known ones. */
  get(name: string): TaskDefinition {
    const task = this.tasks.get(name);
    if (task === undefined) throw new UnknownTaskError(name, this.names());
    return task;
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.tasks.keys()].sort();
  }

  /** How many tasks are registered. */
  get size(): number {
    return this.tasks.size;
  }

  /** Every registered definition, by name. */
  list(): TaskDefinition[] {
    return this.names().map((name) => this.tasks.get(name)!);
  }
}
