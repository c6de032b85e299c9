--[[
  revoke-upsert: stores revoke entries of one namespace whose version is above the stored one.

  KEYS[1] entries hash (task id -> entry json)   KEYS[2] version zset (task id, score = version)
  KEYS[3] expiry zset (task id, score = expiresAt)
  ARGV: for each entry, 4 values: task id, version, entry json, expiresAt or ''

  Returns the 1-based positions of the entries that were applied.
]]
local applied = {}
for i = 1, #ARGV, 4 do
  local id, version = ARGV[i], tonumber(ARGV[i + 1])
  local stored = tonumber(redis.call('ZSCORE', KEYS[2], id))
  if not stored or version > stored then
    redis.call('HSET', KEYS[1], id, ARGV[i + 2])
    redis.call('ZADD', KEYS[2], version, id)
    if ARGV[i + 3] == '' then
      redis.call('ZREM', KEYS[3], id)
    else
      redis.call('ZADD', KEYS[3], tonumber(ARGV[i + 3]), id)
    end
    applied[#applied + 1] = (i + 3) / 4
  end
end
return applied
