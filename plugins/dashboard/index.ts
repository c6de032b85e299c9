import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Stem } from '../../sdk/kernel.js';
import { dashboardApp } from './dashboard-app.js';
import { resolveDashboardOptions, type DashboardOptions } from './dashboard-options.js';
import { EventHub } from './event-hub.js';
import { PageAssets } from './page-assets.js';

export { TOKEN_HEADER } from './action-guard.js';
export type { DashboardControls, DashboardOptions } from './dashboard-options.js';

/** A Node request listener serving the dashboard; `close()` stops its event subscription. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** The same app as a fetch handler (`Request` → `Response`), for servers built on web standards. */
  fetch(request: Request): Response | Promise<Response>;
  /** Stops listening to events and ends open event streams. Does not close the Stem. */
  close(): Promise<void>;
}

/**
 * The web dashboard of a Stem instance, as a Node `(req, res)` listener to mount in your own
 * http, Express or Fastify server under `basePath` (or run with `stem dashboard`): queues,
 * workers, tasks, dead letters and schedules, live from `stem.events`. Actions need `token`.
 *
 * @example http.createServer(createDashboard(stem, { token: process.env.STEM_DASHBOARD_TOKEN })).listen(5555, '127.0.0.1')
 */
export function createDashboard(stem: Stem, options: DashboardOptions = {}): DashboardHandler {
  const resolved = resolveDashboardOptions(options);
  const hub = new EventHub(stem);
  void hub.start();
  const app = dashboardApp(stem, resolved, hub, new PageAssets());
  // overrideGlobalObjects: false leaves the process's own Request and Response alone.
  const listener = getRequestListener(app.fetch, { overrideGlobalObjects: false });
  const handler = ((req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
    // Express strips its mount path from req.url; the app routes on the full path.
    if (typeof req.originalUrl === 'string') req.url = req.originalUrl;
    void listener(req, res);
  }) as DashboardHandler;
  handler.fetch = (request) => app.fetch(request);
  handler.close = () => hub.close();
  return handler;
}
