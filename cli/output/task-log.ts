import type { Signals } from '../../sdk/signals.js';
import { printable } from './printable.js';

/** How `stem worker start` logs: a readable line, or one JSON object per line. */
export type LogFormat = 'text' | 'json';

/**
 * Logs one line per task outcome and per worker milestone at info level, from the signals.
 * `defaultBroker`, when the CLI's zero-server default is in use, is named in the ready line.
 * Returns a function that stops logging.
 */
export function logTaskSignals(signals: Signals, out: NodeJS.WritableStream, format: LogFormat, defaultBroker?: string): () => void {
  const write = (level: string, event: string, fields: Record<string, unknown>, text: string): void => {
    if (format === 'json') out.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
    // Names and messages come from producers: escaped, one event stays one line (no forged log lines).
    else out.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${printable(text)}\n`);
  };
  const offs = [
    signals.on('worker-ready', ({ workerId, hostname, queues, broadcasts }) =>
      write(
        'info',
        'worker-ready',
        { workerId, hostname, queues, broadcasts, ...(defaultBroker === undefined ? {} : { broker: defaultBroker }) },
        `worker ${workerId} ready on ${hostname}, consuming ${queues.join(', ')}` +
          `${broadcasts.length > 0 ? `; broadcasts ${broadcasts.join(', ')}` : ''}` +
          `${defaultBroker === undefined ? '' : ` (broker ${defaultBroker}: the default, no broker configured)`}`,
      ),
    ),
    signals.on('task-succeeded', ({ envelope, durationMs }) =>
      write(
        'info',
        'task-succeeded',
        { id: envelope.id, task: envelope.name, queue: envelope.queue, attempt: envelope.attempt, durationMs },
        `${envelope.name}[${envelope.id}] succeeded in ${durationMs}ms`,
      ),
    ),
    signals.on('task-failed', ({ envelope, error, reason, durationMs }) =>
      write(
        'error',
        'task-failed',
        {
          id: envelope.id,
          task: envelope.name,
          queue: envelope.queue,
          attempt: envelope.attempt,
          reason,
          error: error.message,
          durationMs,
        },
        `${envelope.name}[${envelope.id}] failed (${reason}): ${error.type}: ${error.message}`,
      ),
    ),
    signals.on('task-retried', ({ envelope, error, delayMs }) =>
      write(
        'warn',
        'task-retried',
        { id: envelope.id, task: envelope.name, attempt: envelope.attempt, delayMs, error: error.message },
        `${envelope.name}[${envelope.id}] attempt ${envelope.attempt + 1} failed (${error.message}); retry in ${delayMs}ms`,
      ),
    ),
    signals.on('task-cancelled', ({ envelope, reason }) =>
      write(
        'info',
        'task-cancelled',
        { id: envelope.id, task: envelope.name, reason },
        `${envelope.name}[${envelope.id}] cancelled: ${reason}`,
      ),
    ),
    signals.on('worker-stopping', ({ workerId, inflight }) =>
      write('info', 'worker-stopping', { workerId, inflight }, `worker ${workerId} stopping (${inflight} running)`),
    ),
    signals.on('worker-shutdown', ({ workerId }) => write('info', 'worker-shutdown', { workerId }, `worker ${workerId} stopped`)),
  ];
  return () => offs.forEach((off) => off());
}
