--[[
  set-states: writes task states in one call, each only when it is not older than the state
  stored under its key (see sdk/state-order.ts): compared by generation, then attempt, then
  phase (queued 0 < running 1 < retried 2 < final 3); an equal position replaces the stored one
  unless that one is final. A write applied is SET with a TTL and (unless quiet) PUBLISHed on the
  task's channel for watchers; a write not applied changes nothing and tells nobody. Writes for
  one key in one call apply in order, so the newest of them stands.

  With listing on (ARGV[4] = '1'), a write applied also moves the task in the listing index: one
  sorted set per state whose members are '<updatedAt, 16 digits>:<id>' at score 0 (read newest
  first by ZRANGE … BYLEX REV); the member of the stored state leaves its set (looked for only
  in a set that exists), the new one joins its own. A write dropped changes no set. Each set
  touched is pruned of members older than the longest TTL written lately (those results have
  expired), so a set stays bounded by the TTL.

  KEYS[1..n] the task keys; with listing on, then the six state sets (queued, running, retried,
  succeeded, failed, cancelled) and the key holding the longest TTL written
  ARGV[1] TTL (ms)   ARGV[2] '1' for quiet (no PUBLISH)   ARGV[3] the channel prefix
  ARGV[4] '1' for listing on   ARGV[5] now (epoch ms)   ARGV[6] n
  then for KEYS[i], five values from ARGV[7 + 5(i - 1)]: id, generation, attempt, the state's
  place, state as JSON. The place is the number of the state's set (1 queued … 6 cancelled, as in
  KEYS; its phase follows) and, when the state is listed, its updatedAt in 16 digits: '4' or
  '40000001764518400000'. The producer's first states carry no time without listQueued.

  Returns the number of states written.
]]
local ttl = ARGV[1]
local quiet = ARGV[2] == '1'
local channelPrefix = ARGV[3]
local listing = ARGV[4] == '1'
local n = tonumber(ARGV[6])
local FINAL = 3
local PHASES = { queued = 0, running = 1, retried = 2, succeeded = 3, failed = 3, cancelled = 3 }
local SETS = { queued = 1, running = 2, retried = 3, succeeded = 4, failed = 5, cancelled = 6 }
local SET_PHASES = { 0, 1, 2, 3, 3, 3 }

-- The stored state decoded (or nil), and whether a state at (generation, attempt, phase) may replace it.
local function supersedes(stored, generation, attempt, phase)
  if not stored then return nil, true end
  local ok, current = pcall(cjson.decode, stored)
  if not ok or type(current) ~= 'table' then return nil, true end
  local g = tonumber(current.generation) or 0
  if generation ~= g then return current, generation > g end
  local a = tonumber(current.attempt) or 0
  if attempt ~= a then return current, attempt > a end
  local p = PHASES[current.state] or -1
  if phase ~= p then return current, phase > p end
  return current, p ~= FINAL
end

-- Index changes are gathered per set and sent as one ZREM and one ZADD each: a member added and
-- removed within this call (a task written twice) is simply not added.
local adds, removes = {}, {}
for set = 1, 6 do adds[set] = {} removes[set] = {} end
-- Whether a set exists, asked once per call: a stored state's member is only looked for in a set
-- that exists (the producer's first states join none without listQueued), or among this call's adds.
local exists = {}
local function mayHold(set)
  if next(adds[set]) ~= nil then return true end
  local known = exists[set]
  if known == nil then
    known = redis.call('EXISTS', KEYS[n + set]) == 1
    exists[set] = known
  end
  return known
end
local written = 0
for i = 1, n do
  local at = 7 + 5 * (i - 1)
  local json = ARGV[at + 4]
  local place = ARGV[at + 3]
  local set = tonumber(string.sub(place, 1, 1))
  local phase = SET_PHASES[set] or -1
  local current, applies = supersedes(redis.call('GET', KEYS[i]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), phase)
  if applies then
    redis.call('SET', KEYS[i], json, 'PX', ttl)
    if not quiet then redis.call('PUBLISH', channelPrefix .. ARGV[at], json) end
    if listing then
      local was = current and SETS[current.state]
      if was and mayHold(was) and tonumber(current.updatedAt) then
        local old = string.format('%016.0f', tonumber(current.updatedAt)) .. ':' .. ARGV[at]
        if adds[was][old] then adds[was][old] = nil else removes[was][#removes[was] + 1] = old end
      end
      if adds[set] and #place > 1 then adds[set][string.sub(place, 2) .. ':' .. ARGV[at]] = true end
    end
    written = written + 1
  end
end

if listing then
  local longest = tonumber(redis.call('GET', KEYS[n + 7]) or '0') or 0
  -- Refreshed by every write of the longest TTL, so it outlives every state written with it.
  if tonumber(ttl) >= longest then
    longest = tonumber(ttl)
    redis.call('SET', KEYS[n + 7], ttl, 'PX', ttl)
  end
  local horizon = '(' .. string.format('%016.0f', math.max(tonumber(ARGV[5]) - longest, 0))
  for set = 1, 6 do
    local key = KEYS[n + set]
    local touched = false
    if #removes[set] > 0 then
      redis.call('ZREM', key, unpack(removes[set]))
      touched = true
    end
    local members = {}
    for member in pairs(adds[set]) do
      members[#members + 1] = 0
      members[#members + 1] = member
    end
    if #members > 0 then
      redis.call('ZADD', key, unpack(members))
      touched = true
    end
    if touched then redis.call('ZREMRANGEBYLEX', key, '-', horizon) end
  end
end
return written
