import type { TaskError } from './contracts/result-backend.js';
import { StemError } from './errors.js';

/** Converts anything a handler threw (an Error or not) into a storable TaskError. */
export function toTaskError(thrown: unknown): TaskError {
  if (thrown instanceof Error) {
    const error: TaskError = { type: thrown.name || thrown.constructor?.name || 'Error', message: thrown.message };
    if (thrown.stack) error.stack = thrown.stack;
    if (thrown instanceof StemError) error.code = thrown.code;
    return error;
  }
  let message: string;
  try {
    message = typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown));
  } catch {
    message = String(thrown);
  }
  return { type: 'NonErrorThrown', message: `the handler threw a non-Error value: ${message}` };
}
