import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../../sdk/errors.js';
import { isTaskDefinition, type TaskDefinition } from '../../sdk/task.js';
import { loadFailure, settledOrExplained } from './user-module-errors.js';
import { importUserModule } from './typescript-loader.js';

/**
 * Loads the tasks of a registry module (`--registry lib/tasks.ts`): its default export (a task,
 * an array of tasks, or an object of tasks), or else every exported task definition.
 */
export async function loadRegistryModule(path: string, cwd: string = process.cwd()): Promise<TaskDefinition[]> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw new UsageError(`--registry: ${path} does not exist (resolved to ${file})`);
  let loaded: Record<string, unknown>;
  try {
    loaded = await settledOrExplained(importUserModule(file, cwd), file);
  } catch (error) {
    throw new UsageError(`--registry: ${path} could not be loaded: ${loadFailure(error)}`, { cause: error });
  }
  const fromDefault = collectTasks(loaded.default);
  const tasks = fromDefault.length > 0 ? fromDefault : collectTasks(Object.values(loaded));
  if (tasks.length === 0) {
    throw new UsageError(`--registry: ${path} exports no task definitions; export default [task, …] or export each defineTask(...)`);
  }
  return tasks;
}

function collectTasks(value: unknown): TaskDefinition[] {
  if (isTaskDefinition(value)) return [value];
  if (Array.isArray(value)) return value.flatMap(collectTasks);
  if (value !== null && typeof value === 'object') return Object.values(value).filter(isTaskDefinition);
  return [];
}
