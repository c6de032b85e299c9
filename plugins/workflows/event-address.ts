import { MAX_NAME_BYTES, namePreview, nameProblem } from '../../sdk/envelope.js';
import { InvalidNameError } from '../../sdk/errors.js';

/**
 * Throws InvalidNameError unless `name` is a usable workflow event name and `key` a key every
 * workflow store can keep (no control character such as NUL, which Postgres text refuses, no lone
 * surrogate; `''` is a key). Checked before any store is asked, by `emit` and `wf.waitForEvent`.
 */
export function assertValidEvent(name: unknown, key: unknown): void {
  const nameIssue = nameProblem(name);
  if (nameIssue !== undefined) {
    throw new InvalidNameError(
      'workflow event name',
      `${namePreview(name)} ${nameIssue}`.trimStart(),
      `name the event with 1 to ${MAX_NAME_BYTES} bytes of printable characters`,
    );
  }
  const keyIssue = key === '' ? undefined : nameProblem(key);
  if (keyIssue !== undefined) {
    throw new InvalidNameError(
      'workflow event key',
      `${namePreview(key)} ${keyIssue}`.trimStart(),
      `key the event with up to ${MAX_NAME_BYTES} bytes of printable characters (an order id, a user id)`,
    );
  }
}
