--[[
  revoke-prune: deletes the revoke entries of one namespace that expired at or before ARGV[1].

  KEYS[1] entries hash   KEYS[2] version zset   KEYS[3] expiry zset
  ARGV[1] now (epoch ms)
  Returns the number of entries deleted.
]]
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  redis.call('HDEL', KEYS[1], unpack(ids, first, last))
  redis.call('ZREM', KEYS[2], unpack(ids, first, last))
  redis.call('ZREM', KEYS[3], unpack(ids, first, last))
end
return #ids
