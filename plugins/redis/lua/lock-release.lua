--[[
  lock-release: deletes a lock if the caller owns it.

  KEYS[1] the lock key   ARGV[1] owner
  Returns 1 when released, 0 when someone else (or nobody) holds it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
