import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, ServiceUnavailableError, Stem } from '../../sdk/index.js';
import { redis } from '../../plugins/redis/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { runStem } from '../helpers/run-stem.js';

const SECRET = 'hunter2-secret';

t.test('ServiceUnavailableError masks the password even when handed an unmasked URL', async (t) => {
  const error = new ServiceUnavailableError(`redis://ops:${SECRET}@cache.internal:6379/0`, new Error('ECONNREFUSED'));
  t.notMatch(error.message, SECRET);
  t.equal(error.url, 'redis://ops:***@cache.internal:6379/0');
});

t.test('an unreachable Redis or Postgres fails startup without printing the password', async (t) => {
  const redisError = await Stem.create({ plugins: [redis({ url: `redis://ops:${SECRET}@127.0.0.1:1/0`, connectTimeoutMs: 500 })] }).catch(
    (error: unknown) => error,
  );
  t.type(redisError, ServiceUnavailableError);
  t.notMatch(`${(redisError as Error).message} ${(redisError as Error).stack}`, SECRET);
  const pgError = await Stem.create({
    plugins: [postgres({ url: `postgres://ops:${SECRET}@127.0.0.1:1/db`, connectTimeoutMs: 500 })],
  }).catch((error: unknown) => error);
  t.type(pgError, ServiceUnavailableError);
  t.notMatch(`${(pgError as Error).message} ${(pgError as Error).stack}`, SECRET);
});

t.test('a bad connection URL is a ConfigError that does not print the password', async (t) => {
  for (const make of [
    () => redis({ url: `redis://ops:${SECRET}@host:6379/not-a-db` }),
    () => postgres({ url: `postgres://ops:${SECRET}@host/db?sslmode=sometimes` }),
  ]) {
    const error = (() => {
      try {
        make();
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    t.type(error, ConfigError);
    t.notMatch(error!.message, SECRET);
  }
});

t.test('config print, health and worker start print no password and no signing key', async (t) => {
  const signingKey = randomBytes(32).toString('base64');
  const env = {
    STEM_BROKER_URL: `redis://ops:${SECRET}@127.0.0.1:1/0`,
    STEM_RESULT_BACKEND_URL: `postgres://ops:${SECRET}@127.0.0.1:1/db`,
    STEM_SIGNING_KEYS: `k1:${signingKey}`,
  };
  const dir = t.testdir({});
  for (const args of [
    ['config', 'print'],
    ['config', 'print', '--json'],
    ['health'],
    ['health', '--json'],
    ['worker', 'start', '--verbose'],
  ]) {
    const run = await runStem(args, { env, cwd: dir, timeoutMs: 30_000 });
    const printed = run.stdout + run.stderr;
    t.notMatch(printed, SECRET, `stem ${args.join(' ')}: the password is masked`);
    t.notMatch(printed, signingKey, `stem ${args.join(' ')}: the signing key is not printed`);
    if (args[0] === 'config') t.match(printed, /redis:\/\/ops:\*\*\*@127\.0\.0\.1:1\/0/);
  }
});
