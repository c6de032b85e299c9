// The dashboard in a real browser (Debian's chromium via playwright-core) against a live Redis-backed
// worker in this process: live updates without reload, retry and replay clicked, the token and
// read-only refusals, and a task whose args are HTML shown as text. One browser for the file.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { dashboardControls } from '../../cli/commands/dashboard.js';
import { control } from '../../plugins/control/index.js';
import { createDashboard, type DashboardHandler } from '../../plugins/dashboard/index.js';
import { events } from '../../plugins/events/index.js';
import { redis } from '../../plugins/redis/index.js';
import { revoke } from '../../plugins/revoke/index.js';
import { defineTask, Stem, Unrecoverable } from '../../sdk/index.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { launchChromium, SCREENSHOTS } from './browser.js';

const XSS = '<img src=x onerror=alert(1)>';
const TOKEN = 'test-token-0123456789';
const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));

let releaseGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (releaseGate = resolve));
const runs = new Map<string, number>();

/** Runs until the test opens the gate: a task seen running, then finishing. */
const gated = defineTask({
  name: 'dash.gated',
  handler: async (args: { label: string }) => {
    await gate;
    return { label: args.label, done: true };
  },
});

/** Fails on its first run of a key (a dead letter), succeeds on the next: what retry and replay are for. */
const flaky = defineTask({
  name: 'dash.flaky',
  handler: (args: { key: string }) => {
    const run = (runs.get(args.key) ?? 0) + 1;
    runs.set(args.key, run);
    if (run === 1) throw new Error(`first run of ${args.key} fails`);
    return { key: args.key, run };
  },
});

/** Always fails for good: its args (HTML here) are recorded with the failed state. */
const rejects = defineTask({
  name: 'dash.rejects',
  handler: (args: { html: string }) => {
    throw new Unrecoverable(`refused ${args.html}`);
  },
});

/** Runs until it is aborted (revoke --terminate, shutdown). */
const hangs = defineTask({
  name: 'dash.hangs',
  handler: (_args: Record<string, never>, ctx) =>
    new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
});

/** Serves a dashboard on a free loopback port; returns its base URL. */
async function serve(handler: DashboardHandler): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/stem/`, server };
}

t.test('the dashboard against a live Redis worker, in chromium', async (t) => {
  if (!(await requireRedis(t))) return;
  const browser = await launchChromium(t);
  if (browser === undefined) return;

  const namespace = testNamespace('dashboard');
  const queue = `dash-${namespace.slice(-8)}`;
  t.teardown(() => deleteNamespace(namespace));
  const stem = await Stem.create({
    plugins: [redis({ url: REDIS_URL, namespace }), events(), control(), revoke()],
    tasks: [gated, flaky, rejects, hangs],
    defaultQueue: queue,
  });
  t.teardown(() => stem.close());
  const dashboard = createDashboard(stem, { basePath: '/stem', token: TOKEN, controls: await dashboardControls(stem) });
  t.teardown(() => dashboard.close());
  const { url, server } = await serve(dashboard);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const worker = stem.worker({ queues: [queue], events: true, concurrency: 4, heartbeatInterval: 1_000 });
  await worker.start();

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Waits are for conditions, never for speed: a loaded 2-core machine may take long to get there.
  page.setDefaultTimeout(120_000);
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  t.teardown(() => page.close());

  await t.test('the overview shows a running task appear and finish without a reload', async (t) => {
    await page.goto(`${url}#token=${TOKEN}`);
    await page.waitForSelector('#live.on');
    t.equal(
      await page.evaluate(() => (globalThis as unknown as { location: { hash: string } }).location.hash),
      '#/',
      'the token left the address bar',
    );
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));
    const handle = await stem.enqueue(gated, { label: 'live' });
    if (SCREENSHOTS) {
      // A busier picture for docs/images: more running tasks and a few failures.
      for (const label of ['report-7', 'report-8']) await stem.enqueue(gated, { label });
      for (const key of ['shot-1', 'shot-2']) await stem.enqueue(flaky, { key });
    }
    await page.waitForSelector(`tr[data-task-id="${handle.id}"] [data-state="running"]`, { timeout: 60_000 });
    await page.waitForSelector(`tr[data-worker] a[href="#/task/${handle.id}"]`, { timeout: 60_000 });
    if (SCREENSHOTS) await page.screenshot({ path: `${IMAGES}dashboard-overview.png`, fullPage: true });
    releaseGate();
    await page.waitForSelector(`tr[data-task-id="${handle.id}"] [data-state="succeeded"]`, { timeout: 60_000 });
    t.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 42, 'the page was not reloaded');
    t.ok(await page.isVisible(`tr[data-queue="${queue}"]`), 'the queue is listed');
  });

  await t.test('a failed task is retried with a click and succeeds', async (t) => {
    const handle = await stem.enqueue(flaky, { key: 'retry' });
    await waitFor(async () => (await stem.status(handle.id)).state === 'failed', 'the first run failed');
    await page.goto(`${url}#/task/${handle.id}`);
    await page.waitForSelector('#task-state [data-state="failed"]');
    t.match(await page.textContent('#task-error'), /first run of retry fails/, 'the error is shown');
    t.match(await page.textContent('#task-args'), /"key": "retry"/, 'the args are shown');
    if (SCREENSHOTS) await page.screenshot({ path: `${IMAGES}dashboard-task-failed.png`, fullPage: true });
    await page.click('#retry');
    await page.waitForSelector('#task-state [data-state="succeeded"]', { timeout: 60_000 });
    t.equal((await stem.status(handle.id)).state, 'succeeded', 'the backend agrees');
    t.equal(runs.get('retry'), 2, 'it ran twice');
  });

  await t.test('a dead letter is replayed with a click', async (t) => {
    const handle = await stem.enqueue(flaky, { key: 'dlq' });
    await waitFor(async () => (await stem.broker.getDeadLetter(queue, handle.id)) !== null, 'the dead letter');
    await page.goto(`${url}#/dead-letters/${queue}`);
    const row = `tr[data-dead-letter="${handle.id}"]`;
    await page.waitForSelector(`${row} button.replay`);
    if (SCREENSHOTS) await page.screenshot({ path: `${IMAGES}dashboard-dead-letters.png`, fullPage: true });
    await page.click(`${row} button.replay`);
    await waitFor(async () => (await stem.status(handle.id)).state === 'succeeded', 'the replayed task succeeded');
    await page.waitForSelector(row, { state: 'detached' });
    t.equal(await stem.broker.getDeadLetter(queue, handle.id), null, 'the dead letter is gone');
  });

  await t.test('a task whose args are HTML is shown as text, and nothing runs', async (t) => {
    const handle = await stem.enqueue(rejects, { html: XSS });
    await waitFor(async () => (await stem.status(handle.id)).state === 'failed', 'the task failed');
    await page.goto(`${url}#/task/${handle.id}`);
    await page.waitForSelector('#task-state [data-state="failed"]');
    t.match(await page.textContent('#task-args'), XSS, 'the args are shown literally');
    t.match(await page.textContent('#task-error'), `refused ${XSS}`, 'the error too');
    t.equal(await page.locator('main img').count(), 0, 'no img element was made');
    await page.goto(`${url}#/dead-letters/${queue}`);
    await page.waitForSelector(`tr[data-dead-letter="${handle.id}"]`);
    t.match(await page.textContent(`tr[data-dead-letter="${handle.id}"]`), XSS, 'the dead letter shows it as text');
    t.equal(await page.locator('main img').count(), 0, 'no img element there either');
    t.same(dialogs, [], 'no dialog fired');
  });

  await t.test('the task list shows failed tasks, their args as text', async (t) => {
    await page.goto(`${url}#/tasks?state=failed`);
    const handle = (await stem.listTasks({ state: 'failed', name: 'dash.rejects' })).tasks[0]!;
    const row = `tr[data-task-id="${handle.id}"]`;
    await page.waitForSelector(row);
    t.match(await page.textContent(`${row} td.args`), XSS, 'the args, literally');
    t.equal(await page.locator(`main [data-state]:not([data-state="failed"])`).count(), 0, 'only failed tasks');
    if (SCREENSHOTS) await page.screenshot({ path: `${IMAGES}dashboard-tasks.png`, fullPage: true });
    t.same(dialogs, [], 'no dialog fired');
  });

  await t.test('a group page shows its progress and members', async (t) => {
    const members = [await stem.enqueue(gated, { label: 'member-0' }), await stem.enqueue(gated, { label: 'member-1' })];
    const first = await members[0]!.result({ timeoutMs: 60_000 }).then(() => stem.status(members[0]!.id));
    const groupId = `group-${namespace}`;
    await stem.backend.initGroup(
      groupId,
      members.map((member) => member.id),
    );
    await stem.backend.recordGroupResult(groupId, first);
    await page.goto(`${url}#/group/${groupId}`);
    await page.waitForSelector('#group-progress');
    t.equal(await page.getAttribute('#group-progress', 'value'), '1', 'one of two finished');
    t.equal(await page.locator('main tr[data-task-id]').count(), 2, 'both members listed');
  });

  await t.test('a queue paused with a click takes no task until resumed', async (t) => {
    await page.goto(`${url}#/`);
    const row = `tr[data-queue="${queue}"]`;
    await page.click(`${row} button:text("Pause")`);
    await page.waitForSelector(`${row} :text("(paused)")`);
    await page.waitForSelector(`${row} button:text("Resume")`);
    // The click returns once the live workers replied or its 1 s broadcast ended: a worker slower than that to take the
    // pause may still fetch. So the task is enqueued once the worker says it paused the queue.
    await waitFor(() => worker.pausedQueues().includes(queue), 'the worker to pause the queue');
    const handle = await stem.enqueue(gated, { label: 'after pause' });
    await sleep(1_000);
    t.equal((await stem.status(handle.id)).state, 'queued', 'the task waits while the queue is paused');
    await page.click(`${row} button:text("Resume")`);
    await page.waitForSelector(`${row} button:text("Pause")`);
    await waitFor(async () => (await stem.status(handle.id)).state === 'succeeded', 'the task ran once resumed');
  });

  await t.test('a running task is terminated with a click', async (t) => {
    const handle = await stem.enqueue(hangs, {});
    await waitFor(async () => (await stem.status(handle.id)).state === 'running', 'the task runs');
    await page.goto(`${url}#/task/${handle.id}`);
    await page.waitForSelector('#task-state [data-state="running"]');
    await page.click('button:text("Terminate")');
    await page.waitForSelector('#task-state [data-state="cancelled"]', { timeout: 60_000 });
    t.equal((await stem.status(handle.id)).state, 'cancelled', 'the backend agrees');
    // The action answers once the control request has gathered the workers' replies (1 s): a Stem
    // closed while that request still reads replies leaves ControlClient.request looping on the closed broker.
    await page.waitForSelector('#flash:text("terminated")', { timeout: 60_000 });
  });

  await t.test('actions without the token, with a wrong one, from another site, or read-only are refused', async (t) => {
    const post = (path: string, headers: Record<string, string>, handler: DashboardHandler = dashboard) =>
      handler.fetch(new Request(`http://127.0.0.1/stem/api/${path}`, { method: 'POST', headers, body: '{}' }));
    const failed = await stem.enqueue(flaky, { key: 'refused' });
    await waitFor(async () => (await stem.status(failed.id)).state === 'failed', 'the task failed');
    const retry = `tasks/${failed.id}/retry`;
    t.equal((await post(retry, {})).status, 403, 'no token: 403');
    t.equal((await post(retry, { 'x-stem-token': 'wrong-token-value' })).status, 403, 'wrong token: 403');
    t.equal((await post(retry, { 'x-stem-token': TOKEN, 'sec-fetch-site': 'cross-site' })).status, 403, 'cross-site: 403');
    const readOnly = createDashboard(stem, { basePath: '/stem', token: TOKEN, readOnly: true });
    t.teardown(() => readOnly.close());
    const refused = await post(retry, { 'x-stem-token': TOKEN }, readOnly);
    t.equal(refused.status, 403, 'read-only: 403 even with the token');
    t.match(((await refused.json()) as { error: string }).error, /read-only/);
    const noToken = createDashboard(stem, { basePath: '/stem' });
    t.teardown(() => noToken.close());
    t.equal((await post(retry, { 'x-stem-token': TOKEN }, noToken)).status, 403, 'no token configured: every action refused');
    t.equal((await stem.status(failed.id)).state, 'failed', 'nothing was retried');
    // The same refusal reaches the page: a form post from the browser without the header.
    const status = await page.evaluate(async (path) => (await fetch(path, { method: 'POST' })).status, `${url}api/${retry}`);
    t.equal(status, 403, 'a POST from the page without the header: 403');
  });

  t.same(pageErrors, [], 'no script error on the page');
});
