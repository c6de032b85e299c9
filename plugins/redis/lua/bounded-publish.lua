--[[
  bounded-publish: publishes tasks to a bounded queue (docs/flow-control.md, `max_length`), the
  bound checked in the same atomic step as the write, so concurrent producers cannot overfill it.
  The queue's length is what waits in it: stream entries not leased, delayed tasks, and keyed
  tasks waiting for their key's slot. Keyed tasks go through the same admission as gate-publish.

  overflow 'reject': when the queue cannot take every task of the call, none is written.
  overflow 'drop-oldest': before each task that does not fit, the oldest entry no consumer has
  read yet (by entry id, across the priority bands) is deleted and kept as a dead letter with
  reason 'queue-full-dropped'; a keyed one gives its slot back and lets its key's next task in.
  When nothing is left to drop (what waits is delayed or waits for a slot), the rest is refused.

  The waiting lists of keys are named from ARGV[6] (they share the queue's hash tag, so a
  cluster keeps them in this slot): which keys a drop or a count touches is known only here.

  KEYS[1] lease zset   KEYS[2] delayed zset   KEYS[3..12] the queue's streams, bands 9…0
  KEYS[13] dead letter hash   KEYS[14] dead letter index
  KEYS[15] held hash   KEYS[16] limit hash   KEYS[17] override hash
  ARGV[1] consumer group   ARGV[2] the client's now (epoch ms)   ARGV[3] wake channel
  ARGV[4] maxLength   ARGV[5] overflow   ARGV[6] waiting-list key prefix   ARGV[7] queue name
  ARGV[8..] items, 7 each: band, visibility ms, notBefore (0: now), concurrency key ('' none),
            limit, task id, envelope json

  Returns { refused, letters... }: refused is 0, or the 1-based position of the first task not
  written (it and every later one were refused); letters are the dead letter jsons of the drops.
]]
local leases, delayed = KEYS[1], KEYS[2]
local deadHash, deadIndex = KEYS[13], KEYS[14]
local heldKey, limits, overrides = KEYS[15], KEYS[16], KEYS[17]
local group, now, wake = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local maxLength, overflow, waitingPrefix, queue = tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local bands = { '9', '8', '7', '6', '5', '4', '3', '2', '1', '0' }
local streamOf = {}
for i, band in ipairs(bands) do streamOf[band] = KEYS[2 + i] end

local function enter(band, vt, nb, json)
  local due = tonumber(nb)
  if due > now then
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    redis.call('ZADD', delayed, due, band .. ':' .. vt .. ':' .. json)
    if first[2] == nil or due < tonumber(first[2]) then redis.call('PUBLISH', wake, nb) end
  else
    redis.call('XADD', streamOf[band] or KEYS[12], '*', 'v', vt, 'e', json)
  end
end

local function limitOf(key, carried)
  return tonumber(redis.call('HGET', overrides, key) or carried or redis.call('HGET', limits, key) or '1')
end

-- The length: unleased stream entries, delayed tasks, keyed tasks waiting for a slot.
local length = redis.call('ZCARD', delayed) - redis.call('ZCARD', leases)
for _, stream in pairs(streamOf) do length = length + redis.call('XLEN', stream) end
for _, key in ipairs(redis.call('HKEYS', limits)) do length = length + redis.call('LLEN', waitingPrefix .. key) end
if length < 0 then length = 0 end

local count = (#ARGV - 7) / 7
if overflow == 'reject' and length + count > maxLength then return { 1 } end

-- Entry ids compare as (ms, seq).
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

local function envelopeId(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then
      local ok, envelope = pcall(cjson.decode, fields[i + 1])
      if ok and type(envelope) == 'table' and type(envelope.id) == 'string' then return envelope.id end
    end
  end
  return ''
end

-- Entries of two streams added in the same millisecond may share an id: the task ids (UUIDv7,
-- ordered by creation) decide between them.
local function before(a, b)
  if a[2] ~= b[2] then return older(a[2], b[2]) end
  return envelopeId(a[3]) < envelopeId(b[3])
end

-- The oldest entry of the queue no consumer has read yet: { stream, id, fields } or nil.
local function oldestUnread()
  local best
  for _, stream in pairs(streamOf) do
    local last = '0-0'
    if redis.call('EXISTS', stream) == 1 then
      for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local name, delivered
        for i = 1, #info, 2 do
          if info[i] == 'name' then name = info[i + 1] elseif info[i] == 'last-delivered-id' then delivered = info[i + 1] end
        end
        if name == group then last = delivered end
      end
      local entry = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)[1]
      local candidate = entry and { stream, entry[1], entry[2] }
      if candidate and (best == nil or before(candidate, best)) then best = candidate end
    end
  end
  return best
end

-- Gives a dropped keyed task's slot back and lets its key's oldest waiting tasks in.
local function release(key)
  local held = tonumber(redis.call('HGET', heldKey, key) or '0') - 1
  if held < 0 then held = 0 end
  local limit = limitOf(key, nil)
  local waiting = waitingPrefix .. key
  while held < limit do
    local item = redis.call('LPOP', waiting)
    if not item then break end
    local band, vt, nb, json = string.match(item, '^(%w):(%d+):(%d+):(.*)$')
    if band then
      held = held + 1
      enter(band, vt, nb, json)
    end
  end
  if held > 0 then
    redis.call('HSET', heldKey, key, held)
  else
    redis.call('HDEL', heldKey, key)
    if redis.call('LLEN', waiting) == 0 then redis.call('HDEL', limits, key) end
  end
end

local letters = {}
local function dropOldest()
  local victim = oldestUnread()
  if victim == nil then return false end
  local json
  for i = 1, #victim[3], 2 do
    if victim[3][i] == 'e' then json = victim[3][i + 1] end
  end
  redis.call('XDEL', victim[1], victim[2])
  length = length - 1
  if json == nil then return true end
  local ok, envelope = pcall(cjson.decode, json)
  local id = ok and type(envelope) == 'table' and envelope.id or victim[2]
  -- The envelope is copied as it was written (cjson would turn an empty array into an object).
  local letter = '{"id":' .. cjson.encode(tostring(id)) .. ',"queue":' .. cjson.encode(queue) ..
    ',"reason":"queue-full-dropped","meta":{"maxLength":' .. maxLength .. ',"overflow":"drop-oldest"},"deadAt":' .. now ..
    ',"envelope":' .. json .. '}'
  redis.call('HSET', deadHash, tostring(id), letter)
  redis.call('ZADD', deadIndex, now, tostring(id))
  letters[#letters + 1] = letter
  local headers = ok and type(envelope) == 'table' and envelope.headers
  local key = type(headers) == 'table' and headers['stem-concurrency-key']
  if type(key) == 'string' and key ~= '' then release(key) end
  return true
end

for n = 1, count do
  local at = 7 + (n - 1) * 7
  local band, vt, nb, key, limit, json = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 7]
  while length >= maxLength do
    if not dropOldest() then
      local out = { n }
      for _, letter in ipairs(letters) do out[#out + 1] = letter end
      return out
    end
  end
  if key == '' then
    enter(band, vt, nb, json)
  else
    redis.call('HSET', limits, key, limit)
    local waiting = waitingPrefix .. key
    local held = tonumber(redis.call('HGET', heldKey, key) or '0')
    if held >= limitOf(key, limit) or redis.call('LLEN', waiting) > 0 then
      redis.call('RPUSH', waiting, band .. ':' .. vt .. ':' .. nb .. ':' .. json)
    else
      redis.call('HINCRBY', heldKey, key, 1)
      enter(band, vt, nb, json)
    end
  end
  length = length + 1
end
local out = { 0 }
for _, letter in ipairs(letters) do out[#out + 1] = letter end
return out
