// The chaos harness in a small configuration, so that CI runs every Redis fault (npm run test:chaos runs 5,000 tasks).
import t from 'tap';
import { requireRedis } from '../redis/redis-test-support.js';
import { redisServerInstalled } from './owned-redis-server.js';
import { chaosTests } from './chaos-tap.js';

t.setTimeout(600_000);

if ((await requireRedis(t)) && (await haveRedisServer())) {
  chaosTests(t, 'redis', [
    ['kill-9', 'kill -9 of a random worker while tasks are in flight loses nothing; any duplicate ran on a killed worker'],
    ['client-kill', 'CLIENT KILL of every worker connection loses nothing'],
    [
      'redis-restart',
      'Redis with AOF (appendfsync always) shut down with SIGTERM mid-burst and restarted loses nothing; duplicates only of tasks in flight',
    ],
    [
      'redis-kill',
      'Redis with AOF (appendfsync always) killed with SIGKILL mid-burst and restarted loses nothing; duplicates only of tasks in flight',
    ],
    ['redis-wipe', 'workers waiting through a restart of a Redis without persistence reconnect and run what is enqueued after it'],
    ['sigterm', 'SIGTERM to every worker during a burst loses nothing and runs nothing twice'],
  ]);
}

async function haveRedisServer(): Promise<boolean> {
  if (await redisServerInstalled()) return true;
  const message = 'redis-server is not on the PATH: the chaos tests start their own on a free port';
  if (process.env.CI === 'true') t.fail(message);
  else t.test(message, { skip: message }, async () => undefined);
  return false;
}
