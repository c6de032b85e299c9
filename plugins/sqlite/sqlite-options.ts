import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../sdk/errors.js';
import type { OptionKeys } from '../../sdk/option-keys.js';

/** Options every SQLite service takes. */
export interface SqliteOptions {
  /**
   * `sqlite://path/to/file.db` (relative to the working directory), `sqlite:///abs/path/file.db`,
   * or `sqlite::memory:` (one process only: for tests). Give `url` or `path`.
   */
  url?: string;
  /** The database file (relative to the working directory), or `:memory:`. */
  path?: string;
  /** Separates several Stem apps in one file (default `default`). */
  namespace?: string;
  /** How long a statement waits for another process's write lock before it fails (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Longest gap between two looks at the file's change counter while idle (default 50 ms): the upper
   * bound of a cross-process wake-up when the file-system notification is not available.
   */
  pollIntervalMs?: number;
  /** How long results, groups and chord claims are kept when a write names no TTL (default 1 day). */
  resultTtlMs?: number;
  /** Run the migrations on open (default true). */
  migrate?: boolean;
}

/** The keys of {@link SqliteOptions}: what `sqlite()` and each `sqlite…()` service factory accept. */
export const SQLITE_OPTION_KEYS = {
  url: true,
  path: true,
  namespace: true,
  busyTimeoutMs: true,
  pollIntervalMs: true,
  resultTtlMs: true,
  migrate: true,
} as const satisfies OptionKeys<SqliteOptions>;

/** Options with every default applied. */
export interface ResolvedSqliteOptions {
  /** The URL as given (or made from `path`), for messages. */
  url: string;
  /** The absolute file path, or `:memory:`. */
  file: string;
  namespace: string;
  busyTimeoutMs: number;
  pollIntervalMs: number;
  resultTtlMs: number;
  migrate: boolean;
}

/** The in-memory database's name. */
export const MEMORY = ':memory:';

/**
 * The file a `sqlite:` URL names: `sqlite::memory:`, `sqlite://relative/file.db`,
 * `sqlite:///absolute/file.db`, `sqlite:relative.db`; undefined when it is not a sqlite URL.
 */
export function sqliteUrlPath(url: string): string | undefined {
  const match = /^sqlite:(.*)$/i.exec(url);
  if (match === null) return undefined;
  let rest = match[1]!;
  const query = rest.indexOf('?');
  if (query >= 0) rest = rest.slice(0, query);
  if (rest === MEMORY || rest === `//${MEMORY}`) return MEMORY;
  if (rest.startsWith('//')) rest = rest.slice(2);
  return rest === '' ? undefined : decodeURIComponent(rest);
}

/** Validates options when a factory is called; the ConfigError names the option and the fix. */
export function resolveSqliteOptions(options: SqliteOptions, where = 'sqlite', cwd = process.cwd()): ResolvedSqliteOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`${where}: options must be an object like { url: 'sqlite://.stem/stem.db' }`);
  }
  const { url, path } = options;
  if (url !== undefined && path !== undefined) throw new ConfigError(`${where}: give "url" or "path", not both`);
  let file: string | undefined;
  if (url !== undefined) {
    file = typeof url === 'string' ? sqliteUrlPath(url) : undefined;
    if (file === undefined) {
      throw new ConfigError(
        `${where}: option "url" must be sqlite://path/to/file.db, sqlite:///absolute/file.db or sqlite::memory:, got ` +
          `${JSON.stringify(url)}`,
      );
    }
  } else if (path !== undefined) {
    if (typeof path !== 'string' || path === '')
      throw new ConfigError(`${where}: option "path" must be a file path or ':memory:', got ${JSON.stringify(path)}`);
    file = path;
  } else {
    throw new ConfigError(`${where}: options need "url" (sqlite://path/to/file.db or sqlite::memory:) or "path"`);
  }
  const namespace = options.namespace ?? 'default';
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw new ConfigError(`${where}: option "namespace" must be a non-empty string, got ${JSON.stringify(namespace)}`);
  }
  const migrate = options.migrate ?? true;
  if (typeof migrate !== 'boolean')
    throw new ConfigError(`${where}: option "migrate" must be true or false, got ${JSON.stringify(migrate)}`);
  return {
    url: url ?? `sqlite://${path}`,
    file: file === MEMORY ? MEMORY : isAbsolute(file) ? file : resolve(cwd, file),
    namespace,
    busyTimeoutMs: positiveInteger(options.busyTimeoutMs ?? 5_000, 'busyTimeoutMs', where),
    pollIntervalMs: positiveInteger(options.pollIntervalMs ?? 50, 'pollIntervalMs', where),
    resultTtlMs: positiveInteger(options.resultTtlMs ?? 86_400_000, 'resultTtlMs', where),
    migrate,
  };
}

function positiveInteger(value: unknown, name: string, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`${where}: option "${name}" must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}
