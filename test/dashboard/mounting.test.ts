// The dashboard mounted as docs/dashboard.md shows: in a plain Node http server, in Express under a
// path, and in Fastify under a path. Each serves the page and the API, and an action's JSON body
// reaches it (a body the action refuses as malformed proves it was read). In memory, no browser.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import t, { type Test } from 'tap';
import { createDashboard, type DashboardHandler } from '../../plugins/dashboard/index.js';
import { Stem } from '../../sdk/index.js';

const TOKEN = 'mount-token-0123456789';

/** Checks one mounted dashboard at `base` (e.g. http://127.0.0.1:1234/stem). */
async function checkMounted(t: Test, base: string): Promise<void> {
  const bare = await fetch(base, { redirect: 'manual' });
  t.equal(bare.status, 301, 'the base path without a slash redirects');
  t.equal(new URL(bare.headers.get('location')!, base).pathname, `${new URL(base).pathname}/`, '… to the page');
  const page = await fetch(`${base}/`);
  t.equal(page.status, 200, 'the page');
  t.match(await page.text(), /<title>Stem dashboard<\/title>/);
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/, 'with its Content-Security-Policy');
  const script = await fetch(`${base}/assets/app.js`);
  t.equal(script.status, 200, 'its script');
  const overview = await fetch(`${base}/api/overview`);
  t.equal(overview.status, 200, 'the API');
  t.same(((await overview.json()) as { features: { actions: boolean } }).features.actions, true);
  const replay = (body: string, headers: Record<string, string> = { 'x-stem-token': TOKEN }) =>
    fetch(`${base}/api/dead-letters/default/replay`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  t.equal((await replay('{"ids":[]}', {})).status, 403, 'an action without the token is refused');
  const ok = await replay('{"ids":["none"]}');
  t.equal(ok.status, 200, 'an action with the token runs');
  t.same(await ok.json(), { replayed: [] });
  const malformed = await replay('{"ids":5}');
  t.equal(malformed.status, 400, 'the JSON body reached the dashboard (a malformed one is refused)');
}

/** Listens on a free loopback port; returns the origin. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('mounted in node:http, Express and Fastify', async (t) => {
  const stem = await Stem.create({});
  t.teardown(() => stem.close());
  const dashboard: DashboardHandler = createDashboard(stem, { basePath: '/stem', token: TOKEN });
  t.teardown(() => dashboard.close());

  await t.test('node:http', async (t) => {
    const server = createServer(dashboard);
    t.teardown(() => server.close());
    await checkMounted(t, `${await listen(server)}/stem`);
  });

  await t.test('Express: app.use(basePath, dashboard)', async (t) => {
    const app = express();
    app.use('/stem', dashboard);
    const server = createServer(app as unknown as RequestListener);
    t.teardown(() => server.close());
    await checkMounted(t, `${await listen(server)}/stem`);
  });

  await t.test('Fastify: a scope that leaves the body unread and hands over the raw request', async (t) => {
    const fastify = Fastify();
    await fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      const handle = (
        request: { raw: Parameters<DashboardHandler>[0] },
        reply: { hijack(): void; raw: Parameters<DashboardHandler>[1] },
      ) => {
        reply.hijack();
        dashboard(request.raw, reply.raw);
      };
      scope.all('/stem', handle);
      scope.all('/stem/*', handle);
    });
    t.teardown(() => fastify.close());
    const origin = await fastify.listen({ port: 0, host: '127.0.0.1' });
    await checkMounted(t, `${origin}/stem`);
  });
});
