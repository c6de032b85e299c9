import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ConfigError } from '../../sdk/errors.js';
import type { OptionKeys } from '../../sdk/option-keys.js';
import { maskUrl } from '../../sdk/url.js';

/** Options every Postgres service takes. */
export interface PostgresOptions {
  /** `postgres://user:password@host:5432/db` or `postgresql://…`. */
  url: string;
  /** The schema that holds the plugin's tables (default `stem`); created by the migrations. */
  schema?: string;
  /** Separates several Stem apps in one schema (default `default`). */
  namespace?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** How long to wait for a connection before the server counts as unreachable (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Idle consumers poll this often when no notification came, and pick up expired leases then (default 1000 ms). */
  pollIntervalMs?: number;
  /** How long results, groups and chord claims are kept when a write names no TTL (default 1 day). */
  resultTtlMs?: number;
  /** Run the migrations on start (default true); off when `stem migrate` runs them at deploy. */
  migrate?: boolean;
  /** `application_name` of every connection, as pg_stat_activity shows it (default `stem`). */
  applicationName?: string;
  /** TLS for every connection: `true` or node tls options (ca, cert, key, rejectUnauthorized). Not together with `?sslmode=` in the URL. */
  ssl?: boolean | TlsOptions;
}

/** The keys of {@link PostgresOptions}: what `postgres()` and each `postgres…()` service factory accept. */
export const POSTGRES_OPTION_KEYS = {
  url: true,
  schema: true,
  namespace: true,
  poolSize: true,
  connectTimeoutMs: true,
  pollIntervalMs: true,
  resultTtlMs: true,
  migrate: true,
  applicationName: true,
  ssl: true,
} as const satisfies OptionKeys<PostgresOptions>;

/** Options with every default applied. */
export interface ResolvedPostgresOptions {
  url: string;
  schema: string;
  namespace: string;
  poolSize: number;
  connectTimeoutMs: number;
  pollIntervalMs: number;
  resultTtlMs: number;
  migrate: boolean;
  applicationName: string;
  /** The `ssl` option, when given (the URL's sslmode is read by pg itself). */
  ssl?: boolean | TlsOptions;
}

/** The `sslmode` values the pg driver understands (`no-verify` is its own: encrypt, verify nothing). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Validates options when a factory is called; the ConfigError names the option and the fix. */
export function resolvePostgresOptions(options: PostgresOptions, where = 'postgres'): ResolvedPostgresOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`${where}: options must be an object like { url: 'postgres://postgres@localhost:5432/postgres' }`);
  }
  const { url } = options;
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\/./.test(url)) {
    throw new ConfigError(`${where}: option "url" must be a postgres:// or postgresql:// URL, got ${JSON.stringify(url)}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${where}: option "url" is not a valid URL: ${maskUrl(url)}`);
  }
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode !== null && !(SSL_MODES as readonly string[]).includes(sslmode)) {
    throw new ConfigError(`${where}: the URL's sslmode=${sslmode} is not one of ${SSL_MODES.join(', ')}`);
  }
  const { ssl } = options;
  if (ssl !== undefined && typeof ssl !== 'boolean' && (typeof ssl !== 'object' || ssl === null)) {
    throw new ConfigError(`${where}: option "ssl" must be true, false or an object of node tls options like { ca, rejectUnauthorized }`);
  }
  if (ssl !== undefined && (sslmode !== null || /[?&](ssl|sslcert|sslkey|sslrootcert)=/.test(url))) {
    throw new ConfigError(`${where}: TLS is set twice, by option "ssl" and by the URL's ssl parameters (the URL would win); keep one`);
  }
  const schema = options.schema ?? 'stem';
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new ConfigError(
      `${where}: option "schema" must be a Postgres identifier (letters, digits, _; at most 63), got ${JSON.stringify(schema)}`,
    );
  }
  const namespace = options.namespace ?? 'default';
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw new ConfigError(`${where}: option "namespace" must be a non-empty string, got ${JSON.stringify(namespace)}`);
  }
  return {
    url,
    schema,
    namespace,
    poolSize: positiveInteger(options.poolSize ?? 10, 'poolSize', where),
    connectTimeoutMs: positiveInteger(options.connectTimeoutMs ?? 5_000, 'connectTimeoutMs', where),
    pollIntervalMs: positiveInteger(options.pollIntervalMs ?? 1_000, 'pollIntervalMs', where),
    resultTtlMs: positiveInteger(options.resultTtlMs ?? 86_400_000, 'resultTtlMs', where),
    migrate: booleanOption(options.migrate ?? true, 'migrate', where),
    applicationName: applicationName(options.applicationName ?? 'stem', where),
    ...(ssl === undefined ? {} : { ssl }),
  };
}

function positiveInteger(value: unknown, name: string, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`${where}: option "${name}" must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function applicationName(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 63) {
    throw new ConfigError(`${where}: option "applicationName" must be a string of 1 to 63 characters, got ${JSON.stringify(value)}`);
  }
  return value;
}

function booleanOption(value: unknown, name: string, where: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(`${where}: option "${name}" must be true or false, got ${JSON.stringify(value)}`);
  return value;
}
