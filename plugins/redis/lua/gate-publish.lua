--[[
  gate-publish: publishes a task with a concurrency key (docs/flow-control.md). It enters its
  queue (stream, or the delayed zset when not yet due) only while its key holds fewer slots than
  its limit, taking one; otherwise it waits at the back of its key's list. So the streams only
  ever hold runnable tasks and a full key holds up no other key.

  KEYS[1] held hash (key -> slots held)   KEYS[2] limit hash (key -> limit the tasks carry)
  KEYS[3] override hash (key -> run-time limit)   KEYS[4] the key's waiting list
  KEYS[5] the stream of the task's band   KEYS[6] delayed zset
  ARGV[1] key   ARGV[2] limit   ARGV[3] band   ARGV[4] visibility ms   ARGV[5] notBefore (0: now)
  ARGV[6] envelope json   ARGV[7] the client's now (epoch ms)   ARGV[8] wake channel

  Returns 1 when it entered the queue, 0 when it waits for a slot.
]]
local key = ARGV[1]
redis.call('HSET', KEYS[2], key, ARGV[2])
local limit = tonumber(redis.call('HGET', KEYS[3], key) or ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], key) or '0')
if held >= limit or redis.call('LLEN', KEYS[4]) > 0 then
  redis.call('RPUSH', KEYS[4], ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[5] .. ':' .. ARGV[6])
  return 0
end
redis.call('HINCRBY', KEYS[1], key, 1)
local due = tonumber(ARGV[5])
if due > tonumber(ARGV[7]) then
  local first = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[6], due, ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[6])
  if first[2] == nil or due < tonumber(first[2]) then redis.call('PUBLISH', ARGV[8], ARGV[5]) end
else
  redis.call('XADD', KEYS[5], '*', 'v', ARGV[4], 'e', ARGV[6])
end
return 1
