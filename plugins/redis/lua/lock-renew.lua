--[[
  lock-renew: extends a lock if the caller still owns it.

  KEYS[1] the lock key   ARGV[1] owner   ARGV[2] ttl (ms)
  Returns 1 when extended, 0 when someone else (or nobody) holds it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
