--[[
  dead-letter: ends a lease and keeps the message as a dead letter, atomically.

  KEYS[1] lease zset      KEYS[2] the stream of the delivered entry
  KEYS[3] dead letter hash (id -> dead letter json)  KEYS[4] dead letter index zset (score = deadAt)
  ARGV[1] consumer group  ARGV[2] '1' to XDEL the delivered entry  ARGV[3] lease member
  ARGV[4] entry id        ARGV[5] dead letter id   ARGV[6] deadAt (epoch ms)   ARGV[7] dead letter json
  ARGV[8] the delivery count of the caller's receipt

  Returns 1, or 0 (and changes nothing) for a stale receipt: the entry is no longer pending, or
  was delivered again since.
]]
local pending = redis.pcall('XPENDING', KEYS[2], ARGV[1], ARGV[4], ARGV[4], 1)
if pending.err or not pending[1] or tostring(pending[1][4]) ~= ARGV[8] then return 0 end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[4])
if ARGV[2] == '1' then redis.call('XDEL', KEYS[2], ARGV[4]) end
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[7])
redis.call('ZADD', KEYS[4], tonumber(ARGV[6]), ARGV[5])
return 1
