import { createHash, timingSafeEqual } from 'node:crypto';

/** The header an action carries its token in: set by the page's script, never by a form or a cookie. */
export const TOKEN_HEADER = 'x-stem-token';

/** Why an action is refused, or undefined when it may run. */
export function refuseAction(
  request: { header(name: string): string | undefined },
  options: { token: string | undefined; readOnly: boolean },
): string | undefined {
  if (options.readOnly) return 'the dashboard is read-only';
  if (options.token === undefined) return 'actions are off: the dashboard was started without a token';
  // A cross-site request cannot set a custom header without a CORS preflight, which is never
  // granted: the header alone stops CSRF. Sec-Fetch-Site refuses what slips past anyway.
  if (request.header('sec-fetch-site') === 'cross-site') return 'cross-site requests are refused';
  const given = request.header(TOKEN_HEADER);
  if (given === undefined || given === '') return `missing token: send it in the ${TOKEN_HEADER} header`;
  if (!sameSecret(given, options.token)) return 'wrong token';
  return undefined;
}

/** Compares in constant time (digests, so lengths do not leak either). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
