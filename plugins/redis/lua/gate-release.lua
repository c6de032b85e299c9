--[[
  gate-release: ends keyed tasks (ack, drop, dead letter, or a run-time limit change) and gives
  their slots back: for each key whose slot was freed, the oldest waiting tasks enter the queue
  while the key holds fewer slots than its limit. A stale receipt (XACK finds the entry no longer
  pending: it was acked or delivered elsewhere) frees nothing.

  KEYS[1] lease zset   KEYS[2] held hash   KEYS[3] limit hash   KEYS[4] override hash
  KEYS[5] delayed zset   KEYS[6..15] the queue's streams, bands 9…0
  KEYS[16] dead letter hash   KEYS[17] dead letter index
  KEYS[18..] one waiting list per item below, same order
  ARGV[1] consumer group   ARGV[2] the client's now   ARGV[3] wake channel
  ARGV[4] mode: 'ack' (items are acked), 'limit' (ARGV[5] key, ARGV[6] run-time limit or '' to
          clear; no entries), 'dead' (one item; ARGV[5] dead letter id, ARGV[6] deadAt, ARGV[7] json)
  ARGV[8..] items: triples of band, entry id, key ('limit': none)

  Returns the number of entries acknowledged (mode 'limit': tasks let in).
]]
local leases, heldKey, limits, overrides, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, now, wake, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local bands = { '9', '8', '7', '6', '5', '4', '3', '2', '1', '0' }
local streamOf = {}
for i, band in ipairs(bands) do streamOf[band] = KEYS[5 + i] end

local function admit(item)
  local band, vt, nb, json = string.match(item, '^(%w):(%d+):(%d+):(.*)$')
  if not band then return end
  local due = tonumber(nb)
  if due > now then
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    redis.call('ZADD', delayed, due, band .. ':' .. vt .. ':' .. json)
    if first[2] == nil or due < tonumber(first[2]) then redis.call('PUBLISH', wake, nb) end
  else
    redis.call('XADD', streamOf[band] or KEYS[15], '*', 'v', vt, 'e', json)
  end
end

-- Lets waiting tasks of `key` in while it holds fewer slots than its limit; `freed` slots first given back.
local function refill(key, waiting, freed)
  local held = tonumber(redis.call('HGET', heldKey, key) or '0') - freed
  if held < 0 then held = 0 end
  local limit = tonumber(redis.call('HGET', overrides, key) or redis.call('HGET', limits, key) or '1')
  local entered = 0
  while held < limit do
    local item = redis.call('LPOP', waiting)
    if not item then break end
    held = held + 1
    entered = entered + 1
    admit(item)
  end
  if held > 0 then
    redis.call('HSET', heldKey, key, held)
  else
    redis.call('HDEL', heldKey, key)
    if redis.call('LLEN', waiting) == 0 then redis.call('HDEL', limits, key) end
  end
  return entered
end

if mode == 'limit' then
  local key = ARGV[5]
  if ARGV[6] == '' then redis.call('HDEL', overrides, key) else redis.call('HSET', overrides, key, ARGV[6]) end
  return refill(key, KEYS[18], 0)
end

local acked = 0
local freedOf, listOf = {}, {}
local n = 0
for i = 8, #ARGV, 3 do
  n = n + 1
  local band, id, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stream = streamOf[band]
  if stream and redis.call('XACK', stream, group, id) == 1 then
    redis.call('XDEL', stream, id)
    redis.call('ZREM', leases, band .. ':' .. id)
    acked = acked + 1
    if mode == 'dead' then
      redis.call('HSET', KEYS[16], ARGV[5], ARGV[7])
      redis.call('ZADD', KEYS[17], tonumber(ARGV[6]), ARGV[5])
    end
    freedOf[key] = (freedOf[key] or 0) + 1
    listOf[key] = KEYS[17 + n]
  end
end
for key, freed in pairs(freedOf) do refill(key, listOf[key], freed) end
return acked
