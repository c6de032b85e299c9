// `stem dashboard` as a process: it loads the broker and backend from STEM_* variables, binds
// 127.0.0.1, prints the URL with a token made for the run, answers only loopback Host names,
// refuses actions without that token, and exits 0 on SIGTERM. One process; no browser.
import { get } from 'node:http';
import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { Stem } from '../../sdk/index.js';
import { startStem } from '../helpers/run-stem.js';
import { deleteNamespace, REDIS_URL, requireRedis, testNamespace } from '../redis/redis-test-support.js';

t.test('stem dashboard serves the config’s Redis on loopback with a token of its own', async (t) => {
  if (!(await requireRedis(t))) return;
  const namespace = testNamespace('dashboard-cli');
  t.teardown(() => deleteNamespace(namespace));
  const queue = `dash-cli-${namespace.slice(-8)}`;
  const producer = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace })] });
  t.teardown(() => producer.close());
  await producer.enqueue('nobody.runs.this', { n: 1 }, { queue });

  const url = `${REDIS_URL}?namespace=${namespace}`;
  const dashboard = await startStem(['dashboard', '--port', '0'], {
    env: { STEM_BROKER_URL: url, STEM_RESULT_BACKEND_URL: url },
  });
  t.teardown(() => dashboard.stop('SIGKILL'));
  await dashboard.waitForOutput(/#token=\S+/);
  const [, base, token] = /open (http:\/\/127\.0\.0\.1:\d+\/)#token=(\S+) /.exec(dashboard.output())!;
  t.ok(base, `printed ${base}`);

  const overview = (await (await fetch(`${base}api/overview`)).json()) as { queues: Array<{ name: string; waiting: number }> };
  t.match(
    overview.queues.find((row) => row.name === queue),
    { waiting: 1 },
    'the queue of the configured Redis, with its waiting task',
  );
  const rebound = await new Promise<number>((resolve, reject) =>
    get(`${base}api/overview`, { headers: { host: 'attacker.example' } }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    }).on('error', reject),
  );
  t.equal(rebound, 403, 'another Host name (DNS rebinding) is refused');
  const replay = (headers: Record<string, string>) =>
    fetch(`${base}api/dead-letters/${queue}/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{}',
    });
  t.equal((await replay({})).status, 403, 'an action without the token is refused');
  t.equal((await replay({ 'x-stem-token': token! })).status, 200, 'with the printed token it runs');
  t.equal(await dashboard.stop('SIGTERM'), 0, 'exits 0 on SIGTERM');
});
