import type { TaskStatus } from '../../../sdk/contracts/result-backend.js';

/** Prints a task status as `key: value` lines or as JSON. */
export function printStatus(out: NodeJS.WritableStream, status: TaskStatus, json: boolean): void {
  if (json) {
    out.write(`${JSON.stringify(status, null, 2)}\n`);
    return;
  }
  const lines: Array<[string, unknown]> = [
    ['id', status.id],
    ['state', status.state],
    ['task', status.name],
    ['queue', status.queue],
    ['attempt', status.attempt],
    ['result', status.result === undefined ? undefined : JSON.stringify(status.result)],
    ['error', status.error ? `${status.error.type}: ${status.error.message}` : undefined],
    ['progress', status.progress === undefined ? undefined : JSON.stringify(status.progress)],
    ['worker', status.workerId],
    ['updated', status.updatedAt ? new Date(status.updatedAt).toISOString() : undefined],
  ];
  for (const [key, value] of lines) if (value !== undefined) out.write(`${key.padEnd(9)}${String(value)}\n`);
}
