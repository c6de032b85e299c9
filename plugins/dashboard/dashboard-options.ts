import type { ScheduleEntry } from '../../sdk/contracts/schedule-store.js';
import { ConfigError } from '../../sdk/errors.js';
import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';

/**
 * Operations the dashboard cannot do through the kernel's contracts alone (they live in other
 * plugins: control, rate-limit, revoke, beat). `stem dashboard` wires them; in code, pass your own.
 * Each one missing hides its buttons.
 */
export interface DashboardControls {
  /** Stops every worker fetching from `queue` (stored, so workers started later stay off it). */
  pauseQueue?(queue: string): Promise<void>;
  /** Ends a pause. */
  resumeQueue?(queue: string): Promise<void>;
  /** The queues paused now. */
  pausedQueues?(): Promise<readonly string[]>;
  /** Sets a task's rate limit (`10/s`, `100/m`…), `null` for none, `undefined` for the task's own. */
  setRateLimit?(task: string, rate: string | null | undefined): Promise<void>;
  /** Revokes a task; with `terminate`, aborts it where it runs. */
  revoke?(taskId: string, options: { terminate: boolean }): Promise<void>;
  /** Enables or disables a schedule entry (from its next slot after now); returns the entry saved. */
  setScheduleEnabled?(id: string, enabled: boolean): Promise<ScheduleEntry>;
}

/** Options of `createDashboard`. */
export interface DashboardOptions {
  /** The path the dashboard is mounted under, e.g. `/stem` (default `/`). */
  basePath?: string;
  /**
   * The secret every action (POST) must send in the `X-Stem-Token` header. Without one, actions
   * are refused (403) and the dashboard only shows.
   */
  token?: string;
  /** Refuse every action, even with the token (default false). */
  readOnly?: boolean;
  /** Pause/resume, rate limits and revoke: see {@link DashboardControls}. */
  controls?: DashboardControls;
  /**
   * Host names (the `Host` header, without port) the dashboard answers; others get 403. Guards a
   * dashboard on 127.0.0.1 against DNS rebinding. Default: any (your server decides).
   */
  allowedHosts?: readonly string[];
}

/** The keys of {@link DashboardOptions}: what `createDashboard()` accepts. */
const DASHBOARD_OPTION_KEYS = {
  basePath: true,
  token: true,
  readOnly: true,
  controls: true,
  allowedHosts: true,
} as const satisfies OptionKeys<DashboardOptions>;

/** The options once checked. */
export interface ResolvedDashboardOptions {
  basePath: string;
  token: string | undefined;
  readOnly: boolean;
  controls: DashboardControls;
  allowedHosts: ReadonlySet<string> | undefined;
}

/** Checks the options, naming the one that is wrong. */
export function resolveDashboardOptions(options: DashboardOptions = {}): ResolvedDashboardOptions {
  assertKnownOptions('createDashboard()', options, DASHBOARD_OPTION_KEYS);
  let basePath = options.basePath ?? '/';
  if (typeof basePath !== 'string' || !basePath.startsWith('/') || /[?#\s]/.test(basePath))
    throw new ConfigError(`dashboard: basePath "${String(basePath)}" must be a path starting with "/" (e.g. "/stem")`);
  basePath = basePath.replace(/\/+$/, '');
  const token = options.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < 8))
    throw new ConfigError('dashboard: token must be a string of at least 8 characters (or leave it out to refuse every action)');
  return {
    basePath,
    token,
    readOnly: options.readOnly === true,
    controls: options.controls ?? {},
    allowedHosts: options.allowedHosts === undefined ? undefined : new Set(options.allowedHosts.map((host) => host.toLowerCase())),
  };
}
