// A worker killed (SIGKILL) between winning a chord's claim and firing its callback, on Redis.
import t from 'tap';
import { requireRedis } from '../redis/redis-test-support.js';
import { chordCrashTests } from './chord-crash-cases.js';

if (await requireRedis(t)) chordCrashTests(t, 'redis');
