// One way to reach the test Redis for every test file: the Redis plugin's test support.
export { requireRedis as redisAvailable, REDIS_URL as TEST_REDIS_URL } from '../redis/redis-test-support.js';
