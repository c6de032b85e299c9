// A Beat process killed with SIGKILL mid-firing and restarted, on Redis: the firing happens under the same id.
import t from 'tap';
import { requireRedis } from '../redis/redis-test-support.js';
import { crashTests, redisStore } from './beat-crash-cases.js';

if (await requireRedis(t)) crashTests(t, redisStore);
