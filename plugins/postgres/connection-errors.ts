import type pg from 'pg';

/** What pg and its pool say when a connection is gone (no SQLSTATE to go by). */
const CONNECTION_ERROR_PATTERN = new RegExp(
  [
    'Connection terminated',
    'connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error',
    'terminating connection',
  ].join('|'),
  'i',
);

/** True for errors that mean "the connection went away" (SQLSTATE 08*, 57P0*, socket errors), not "the statement is wrong". */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ENOTFOUND') return true;
  }
  const message = error instanceof Error ? error.message : '';
  return CONNECTION_ERROR_PATTERN.test(message);
}

/**
 * A connection the server drops (restart, `pg_terminate_backend`) emits 'error': on the pool when
 * idle, on the client when checked out. The query in flight fails on its own and is retried by
 * `run`, and the pool discards the dead client on release; without these listeners node would
 * crash on the unhandled 'error' event.
 */
export function ignoreDroppedConnections(pool: pg.Pool): void {
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
}
