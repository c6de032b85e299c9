// `stem schedule …` with a named store (`--store URL`, STEM_SCHEDULE_STORE_URL) needs nothing but
// that store: the CLI's zero-server default broker must not open, so no `.stem/stem.db` appears in
// the project of a user who keeps schedules in Redis.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runInProcess } from '../cli/in-process.js';
import { uniqueName } from '../helpers/wait.js';
import { deleteNamespace, REDIS_URL, requireRedis } from '../redis/redis-test-support.js';

if (await requireRedis(t)) {
  const project = await mkdtemp(join(tmpdir(), 'stem-store-only-'));
  const config = join(project, 'stem.config.mjs');
  await writeFile(config, 'export default {};\n');
  const namespace = uniqueName('store-only');
  t.teardown(async () => {
    await rm(project, { recursive: true, force: true });
    await deleteNamespace(namespace);
  });
  const store = `${REDIS_URL}?namespace=${namespace}`;

  t.test('schedule list --store redis://… leaves no .stem/ in the project', async (t) => {
    const run = await runInProcess(['schedule', 'list', '--store', store, '--config', config]);
    t.equal(run.code, 0, run.stderr);
    t.notOk(existsSync(join(project, '.stem')), 'no default SQLite database was created');
  });

  t.test('STEM_SCHEDULE_STORE_URL does the same', async (t) => {
    const run = await runInProcess(['schedule', 'list', '--config', config], { env: { STEM_SCHEDULE_STORE_URL: store } });
    t.equal(run.code, 0, run.stderr);
    t.notOk(existsSync(join(project, '.stem')), 'no default SQLite database was created');
  });

  t.test('without a store, the schedules live with the default broker in the project', async (t) => {
    const run = await runInProcess(['schedule', 'list', '--config', config]);
    t.equal(run.code, 0, run.stderr);
    t.ok(existsSync(join(project, '.stem', 'stem.db')), 'the default SQLite database holds the schedules');
    await rm(join(project, '.stem'), { recursive: true, force: true });
  });
}
