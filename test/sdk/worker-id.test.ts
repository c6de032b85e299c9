import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DuplicateWorkerIdError } from '../../sdk/errors.js';
import { Stem } from '../../sdk/kernel.js';
import { redis } from '../../plugins/redis/index.js';
import { repoRoot, runStem, startStem } from '../helpers/run-stem.js';
import { REDIS_URL, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';

// Issue 26, item 7: two workers with one id were accepted, and a broadcast reached only one of them
// (they share the consumer id). As Celery warns of two nodes with one name, the second is refused.

t.test("in one process, a second worker with a running worker's id is refused; once that one stops, the id is free", async (t) => {
  const stem = await Stem.create();
  t.teardown(() => stem.close());
  const first = stem.worker({ id: 'reports-1' });
  await first.start();
  const second = stem.worker({ id: 'reports-1' });
  const refusal = await second.start().then(
    () => undefined,
    (error: unknown) => error,
  );
  t.type(refusal, DuplicateWorkerIdError);
  t.match(refusal, {
    code: 'duplicate-worker-id',
    exitCode: 64,
    message: /^worker id "reports-1" is already in use by another worker of this process; give each worker its own id/,
  });
  t.equal(second.state, 'idle', 'the refused worker did not start');
  await first.stop();
  await second.start();
  t.equal(second.state, 'running', 'the id is free once its worker stopped');
  await second.stop();
  const other = stem.worker({ id: 'reports-2' });
  await other.start();
  await other.stop();
});

t.test(
  'on a shared backend, a worker of another Stem with a live heartbeat of the id is named: host, pid, last beat (Redis)',
  async (t) => {
    if (!(await requireRedis(t))) return;
    const namespace = testNamespace('worker-id');
    t.teardown(() => deleteNamespace(namespace));
    const url = `${REDIS_URL}?namespace=${namespace}`;
    const a = await Stem.create({ plugins: [redis({ url })] });
    const b = await Stem.create({ plugins: [redis({ url })] });
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    const first = a.worker({ id: 'shared-id' });
    await first.start();
    await t.rejects(b.worker({ id: 'shared-id' }).start(), {
      name: 'DuplicateWorkerIdError',
      message: new RegExp(
        `^worker id "shared-id" is already in use by a live worker \\(host .+, pid ${process.pid}, last heartbeat \\d+s ago\\); `,
      ),
    });
    await first.stop();
    const again = b.worker({ id: 'shared-id' });
    await again.start();
    t.pass('the other Stem takes the id once it is free, though the heartbeat has not expired yet');
    await again.stop();
  },
);

t.test(
  'through the CLI: a second `stem worker start` with the same worker.id exits 64 with one line; --id names a worker over the config; after a kill -9 the id can be reused',
  async (t) => {
    if (!(await requireRedis(t))) return;
    const namespace = testNamespace('worker-id-cli');
    t.teardown(() => deleteNamespace(namespace));
    const url = `${REDIS_URL}?namespace=${namespace}`;
    const project = mkdtempSync(join(repoRoot, '.tmp-worker-id-'));
    t.teardown(() => rmSync(project, { recursive: true, force: true }));
    const config = join(project, 'stem.config.mjs');
    writeFileSync(config, "export default { worker: { id: 'billing-1' } };\n");
    const env = { STEM_BROKER_URL: url, STEM_RESULT_BACKEND_URL: url, STEM_CONFIG: config };

    const first = await startStem(['worker', 'start'], { env });
    t.teardown(() => first.stop('SIGKILL'));
    await first.waitForOutput(/worker billing-1 ready/, 120_000);
    const second = await runStem(['worker', 'start'], { env, timeoutMs: 120_000 });
    t.equal(second.code, 64, second.stdout + second.stderr);
    t.match(
      second.stderr,
      /^stem: worker id "billing-1" is already in use by a live worker \(host .+, pid \d+, last heartbeat \d+s ago\); give each worker its own id/,
    );
    t.equal(second.stderr.trim().split('\n').length, 1, 'one line');
    t.notMatch(second.stdout, /ready/);
    const flagged = await startStem(['worker', 'start', '--id', 'billing-2'], { env });
    t.teardown(() => flagged.stop('SIGKILL'));
    await flagged.waitForOutput(/worker billing-2 ready/, 120_000);
    t.equal(await flagged.stop(), 0, "--id names the worker, over the config's worker.id");

    await first.stop('SIGKILL');
    const restarted = await startStem(['worker', 'start'], { env });
    t.teardown(() => restarted.stop('SIGKILL'));
    await restarted.waitForOutput(/worker billing-1 ready/, 120_000);
    t.pass('the heartbeat of a dead process of this host does not hold the id');
    t.equal(await restarted.stop(), 0);
  },
);
