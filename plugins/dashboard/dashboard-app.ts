import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { TaskPage, TaskQuery, TaskState, TaskStatus } from '../../sdk/contracts/result-backend.js';
import { isBroadcastAddress } from '../../sdk/envelope.js';
import { StemError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import { refuseAction } from './action-guard.js';
import type { ResolvedDashboardOptions } from './dashboard-options.js';
import type { EventHub } from './event-hub.js';
import type { PageAssets } from './page-assets.js';

/** The task states a list may filter on. */
const LISTED_STATES: readonly TaskState[] = ['queued', 'running', 'retried', 'succeeded', 'failed', 'cancelled'];

/** How often an open event stream sends a comment, so proxies keep it open and a gone page is noticed. */
const KEEPALIVE_MS = 15_000;

/** What the kernel offers for listing and retrying (#23), read structurally so a Stem without them reports it. */
interface TaskOperations {
  listTasks?(query: TaskQuery): Promise<TaskPage>;
  retry?(id: string): Promise<unknown>;
}

/** The HTTP status of an error an operation threw. */
function statusOf(error: unknown): 400 | 404 | 409 | 500 | 501 {
  if (!(error instanceof StemError)) return 500;
  switch (error.code) {
    case 'unknown-task-id':
      return 404;
    case 'task-not-retryable':
    case 'envelope-not-recorded':
      return 409;
    case 'listing-not-supported':
    case 'unsupported-capability':
      return 501;
    default:
      return 400;
  }
}

/** A task's arguments when its state recorded them. */
function recordedArgs(status: TaskStatus): { recorded: boolean; value?: unknown } {
  return 'args' in status && status.args !== undefined ? { recorded: true, value: status.args } : { recorded: false };
}

/** A path parameter (the routes are built from the base path at run time, so Hono cannot type them). */
function param(c: Context, name: string): string {
  return c.req.param(name) ?? '';
}

/** Reads a JSON body that may be empty. */
async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text === '') return {};
  const parsed: unknown = JSON.parse(text);
  return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}

/** A list of ids from a body, or undefined for "all". */
function idsOf(body: Record<string, unknown>): string[] | undefined {
  const ids = body.ids;
  if (ids === undefined) return undefined;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new TypeError('ids must be an array of strings');
  return ids;
}

/**
 * The dashboard's routes: the page and its assets, a JSON API over the Stem's services, and the
 * live event stream. Every GET only reads; every POST is an action, refused without the token,
 * in read-only mode, and from another site.
 */
export function dashboardApp(stem: Stem, options: ResolvedDashboardOptions, hub: EventHub, assets: PageAssets): Hono {
  // Full paths rather than Hono's basePath(), which would merge `/stem` and `/stem/`: the page lives at `/stem/`.
  const app = new Hono();
  const at = (path: string): string => `${options.basePath}${path}`;
  const tasks = stem as unknown as TaskOperations;
  const controls = options.controls;

  app.use('*', async (c, next) => {
    if (options.basePath !== '' && c.req.path === options.basePath) return c.redirect(`${options.basePath}/`, 301);
    if (options.allowedHosts !== undefined) {
      const host = (c.req.header('host') ?? '')
        .replace(/:\d+$/, '')
        .replace(/^\[|\]$/g, '')
        .toLowerCase();
      if (!options.allowedHosts.has(host)) return c.text(`host "${host}" is not allowed`, 403);
    }
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
  });

  app.onError((error, c) => {
    const status = error instanceof TypeError || error instanceof SyntaxError ? 400 : statusOf(error);
    return c.json({ error: error.message, code: (error as StemError).code }, status);
  });

  app.post('*', async (c, next) => {
    const refused = refuseAction({ header: (name) => c.req.header(name) }, options);
    if (refused !== undefined) return c.json({ error: `action refused: ${refused}` }, 403);
    await next();
  });

  // The page: relative links and API calls, so it works under any base path.
  app.get(at('/'), (c) => assets.respond(c, 'index.html'));
  app.get(at('/assets/:file'), (c) => assets.respond(c, param(c, 'file')));

  app.get(at('/api/overview'), async (c) => {
    const broker = stem.broker;
    const [queues, workers, paused] = await Promise.all([
      broker.listQueues(),
      stem.backend.listWorkers(),
      controls.pausedQueues?.().catch(() => undefined),
    ]);
    const rates = hub.ratesPerMinute();
    const rows = await Promise.all(
      queues
        .filter((queue) => !isBroadcastAddress(queue))
        .map(async (queue) => ({
          name: queue,
          waiting: await broker.pending(queue),
          running: await broker.inflight(queue),
          dead: (await broker.listDeadLetters(queue, { limit: 1 })).total,
          perMinute: rates[queue] ?? { succeeded: 0, failed: 0 },
          ...(paused === undefined ? {} : { paused: paused.includes(queue) }),
        })),
    );
    return c.json({
      queues: rows.sort((a, b) => a.name.localeCompare(b.name)),
      workers: workers
        .sort((a, b) => a.workerId.localeCompare(b.workerId))
        .map((worker) => ({ ...worker, runningTasks: hub.runningOn(worker.workerId) })),
      events: hub.status(),
      recent: hub.recentEvents(),
      now: Date.now(),
      features: {
        actions: !options.readOnly && options.token !== undefined,
        readOnly: options.readOnly,
        listTasks: typeof tasks.listTasks === 'function' && typeof stem.backend.listTasks === 'function',
        retry: typeof tasks.retry === 'function',
        pause: typeof controls.pauseQueue === 'function' && typeof controls.resumeQueue === 'function',
        rateLimit: typeof controls.setRateLimit === 'function',
        revoke: typeof controls.revoke === 'function',
        schedules: typeof controls.setScheduleEnabled === 'function',
      },
    });
  });

  app.get(at('/api/tasks'), async (c) => {
    if (typeof tasks.listTasks !== 'function') return c.json({ error: 'this Stem cannot list tasks' }, 501);
    const query: TaskQuery = { limit: 50 };
    const state = c.req.query('state');
    if (state !== undefined && state !== '') {
      const states = state.split(',') as TaskState[];
      if (!states.every((one) => LISTED_STATES.includes(one)))
        return c.json({ error: `state must be among ${LISTED_STATES.join(', ')}` }, 400);
      query.state = states;
    }
    for (const key of ['name', 'queue', 'cursor'] as const) {
      const value = c.req.query(key);
      if (value !== undefined && value !== '') query[key] = value;
    }
    const page = await tasks.listTasks.call(stem, query);
    return c.json({ tasks: page.tasks.map((task) => ({ ...task, args: recordedArgs(task) })), cursor: page.cursor });
  });

  app.get(at('/api/tasks/:id'), async (c) => {
    const id = param(c, 'id');
    const status = await stem.backend.get(id);
    if (status === null && hub.timeline(id).length === 0) return c.json({ error: `task ${id} is unknown to the result backend` }, 404);
    return c.json({ status, args: status === null ? { recorded: false } : recordedArgs(status), timeline: hub.timeline(id) });
  });

  app.get(at('/api/groups/:id'), async (c) => {
    const group = await stem.backend.getGroup(param(c, 'id'));
    if (group === null) return c.json({ error: `group ${param(c, 'id')} is unknown to the result backend` }, 404);
    const states = await Promise.all(group.memberIds.map((id) => stem.backend.get(id)));
    return c.json({
      id: group.id,
      expected: group.expected,
      completed: group.completed,
      members: group.memberIds.map((id, index) => ({ id, name: states[index]?.name, state: states[index]?.state ?? 'pending' })),
    });
  });

  app.get(at('/api/dead-letters'), async (c) => {
    const queue = c.req.query('queue') ?? stem.settings.defaultQueue;
    const offset = Number(c.req.query('offset') ?? 0);
    const page = await stem.broker.listDeadLetters(queue, { limit: 50, offset: Number.isFinite(offset) ? offset : 0 });
    return c.json({ queue, total: page.total, entries: page.entries });
  });

  app.get(at('/api/schedules'), async (c) => c.json({ schedules: await stem.service('scheduleStore').list() }));

  app.get(at('/api/events'), (c) =>
    streamSSE(c, async (stream) => {
      const queue: string[] = [];
      let wake: (() => void) | undefined;
      const stop = hub.listen((event) => {
        queue.push(JSON.stringify(event));
        wake?.();
      });
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify(hub.status()) });
        while (open) {
          if (queue.length === 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, KEEPALIVE_MS).unref();
            });
            wake = undefined;
            if (queue.length === 0 && open) await stream.write(': keepalive\n\n');
            continue;
          }
          await stream.writeSSE({ data: queue.splice(0, queue.length).join('\n') });
        }
      } finally {
        stop();
      }
    }),
  );

  app.post(at('/api/tasks/:id/retry'), async (c) => {
    if (typeof tasks.retry !== 'function') return c.json({ error: 'this Stem cannot retry tasks' }, 501);
    await tasks.retry.call(stem, param(c, 'id'));
    return c.json({ retried: param(c, 'id') });
  });

  app.post(at('/api/tasks/:id/revoke'), async (c) => {
    if (controls.revoke === undefined) return c.json({ error: 'revoke is not wired into this dashboard (controls.revoke)' }, 501);
    const body = await jsonBody(c);
    await controls.revoke(param(c, 'id'), { terminate: body.terminate === true });
    return c.json({ revoked: param(c, 'id'), terminate: body.terminate === true });
  });

  app.post(at('/api/dead-letters/:queue/replay'), async (c) => {
    const ids = idsOf(await jsonBody(c));
    const replayed = await stem.broker.replayDeadLetters(param(c, 'queue'), ids === undefined ? {} : { ids });
    return c.json({ replayed: replayed.map((entry) => entry.id) });
  });

  app.post(at('/api/dead-letters/:queue/purge'), async (c) => {
    const ids = idsOf(await jsonBody(c));
    return c.json({ purged: await stem.broker.purgeDeadLetters(param(c, 'queue'), ids === undefined ? {} : { ids }) });
  });

  app.post(at('/api/schedules/:id/:verb{enable|disable}'), async (c) => {
    if (controls.setScheduleEnabled === undefined)
      return c.json({ error: 'enabling schedules is not wired into this dashboard (controls.setScheduleEnabled)' }, 501);
    return c.json({ schedule: await controls.setScheduleEnabled(param(c, 'id'), param(c, 'verb') === 'enable') });
  });

  app.post(at('/api/queues/:queue/:verb{pause|resume}'), async (c) => {
    const act = param(c, 'verb') === 'pause' ? controls.pauseQueue : controls.resumeQueue;
    if (act === undefined) return c.json({ error: 'pause and resume are not wired into this dashboard (controls)' }, 501);
    await act.call(controls, param(c, 'queue'));
    return c.json({ queue: param(c, 'queue'), paused: param(c, 'verb') === 'pause' });
  });

  app.post(at('/api/rate-limits/:task'), async (c) => {
    if (controls.setRateLimit === undefined) return c.json({ error: 'rate limits are not wired into this dashboard (controls)' }, 501);
    const rate = (await jsonBody(c)).rate;
    if (rate !== null && rate !== undefined && typeof rate !== 'string')
      return c.json({ error: 'rate must be a string, null or absent' }, 400);
    await controls.setRateLimit(param(c, 'task'), rate as string | null | undefined);
    return c.json({ task: param(c, 'task'), rate: rate ?? null });
  });

  return app;
}
