--[[
  schedule-upsert: compare-and-set of one schedule entry.

  KEYS[1] entries hash (id -> entry json)   KEYS[2] versions hash (id -> version)
  KEYS[3] due zset (id, score = nextRunAt; only enabled entries that will fire again)
  ARGV[1] id   ARGV[2] the version the caller read (0 for a new id)   ARGV[3] entry json (with version + 1)
  ARGV[4] nextRunAt, or '' to leave the entry out of the due index

  Returns { 1, new version } when written, { 0, stored version } when ARGV[2] was stale.
]]
local stored = tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0
if stored ~= tonumber(ARGV[2]) then return { 0, stored } end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], stored + 1)
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1])
end
return { 1, stored + 1 }
