import { ConfigError } from '../../sdk/errors.js';

/**
 * Waits for a config module to load. If its top-level await never settles, Node would find the
 * event loop empty and exit with status 13 and no word; 'beforeExit' fires just before, and
 * rejecting there turns it into an error the command reports like any other.
 */
export function settledOrExplained<T>(loading: Promise<T>, file: string): Promise<T> {
  let onIdle!: () => void;
  const stuck = new Promise<never>((_, reject) => {
    onIdle = () =>
      reject(
        new ConfigError(
          `${file} never finished loading: a top-level await in it (or in a module it imports) waits on a promise that never settles`,
        ),
      );
  });
  process.once('beforeExit', onIdle);
  return Promise.race([loading, stuck]).finally(() => process.off('beforeExit', onIdle));
}

/** One line of what a module that failed to load said (esbuild's syntax errors span several lines). */
export function loadFailure(error: unknown): string {
  const errors = (
    error as { errors?: Array<{ text?: string; location?: { file?: string; line?: number; column?: number } | null }> } | null
  )?.errors;
  if (Array.isArray(errors) && errors.length > 0 && typeof errors[0]?.text === 'string') {
    const { text, location } = errors[0]!;
    const where = location ? `${location.file ?? ''}:${location.line ?? '?'}:${location.column ?? '?'}: ` : '';
    return `${where}${text}${errors.length > 1 ? ` (and ${errors.length - 1} more error(s))` : ''}`;
  }
  if (!(error instanceof Error)) return `it threw ${typeof error === 'string' ? JSON.stringify(error) : String(error)}`;
  const lines = error.message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return lines.join(' ') || error.name;
}
