--[[
  schedule-remove: deletes one schedule entry and its index entries.

  KEYS[1] entries hash   KEYS[2] versions hash   KEYS[3] due zset
  ARGV[1] id
  Returns 1 when there was an entry, else 0.
]]
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return removed
