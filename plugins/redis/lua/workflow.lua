--[[
  workflow: every change of the Redis workflow store, one operation per call (ARGV[1]).

  KEYS[1] the runs index zset ({<namespace>:wf}:runs, score createdAt). Every other key of the
  store shares its hash tag, so one script call touches one slot; they are named from ARGV[2],
  the prefix ({<namespace>:wf}):
    <prefix>:run:<id>     hash: meta (JSON: status, lease, waiter, error, times), input, result (raw JSON)
    <prefix>:cp:<id>      hash: position -> checkpoint JSON (written once per position)
    <prefix>:wait:<pair>  set of run ids waiting on an (event, key) pair
    <prefix>:buf:<pair>   list of "<expiresAt>|<payload JSON>", events emitted before anyone waited
  User values (input, result, payloads, checkpoints) pass through as strings, never decoded here.

  Operations (ARGV[3]…):
    create   id meta input                    -> 1 created, 0 existed
    claim    id owner leaseMs now             -> {'claimed'|'missing'|'final'|'leased', meta, input}
    renew    id owner leaseMs now             -> 1 | 0
    save     id owner('' none) now pos cp     -> the stored checkpoint JSON, or false (not held)
    suspend  id owner now wakeAt('') waiter('') step-pair('') -> {'suspended'} | {'lost'} | {'checkpoint', cp}
    finish   id owner now status value        -> 1 | 0 (value: result JSON, or error JSON)
    release  id owner now                     -> 1 | 0
    emit     pair event key payload now ttl   -> {id, meta, cp, id, meta, cp, …} of the runs delivered to
    cancel   id reason now                    -> meta | false
    rewind   id position now                  -> meta | false
]]
local op = ARGV[1]
local prefix = ARGV[2]

local function runKey(id) return prefix .. ':run:' .. id end
local function cpKey(id) return prefix .. ':cp:' .. id end

local function load(id)
  local raw = redis.call('HGET', runKey(id), 'meta')
  if not raw then return nil end
  return cjson.decode(raw)
end

local function store(meta)
  redis.call('HSET', runKey(meta.id), 'meta', cjson.encode(meta))
end

local function final(meta)
  return meta.status == 'succeeded' or meta.status == 'failed' or meta.status == 'cancelled'
end

local function held(meta, owner)
  return meta ~= nil and not final(meta) and meta.lease ~= nil and meta.lease.owner == owner
end

local function pairOf(event, key)
  return string.len(event) .. ':' .. event .. key
end

local function dropWaiter(meta)
  local waiting = meta.waiting
  if waiting == nil then return end
  redis.call('SREM', prefix .. ':wait:' .. pairOf(waiting.event, waiting.key), meta.id)
  meta.waiting = nil
end

-- Stores cp at pos unless the position has one; a checkpoint at the waiter's position removes the waiter.
local function record(meta, pos, cp, now)
  local stored = redis.call('HGET', cpKey(meta.id), pos)
  if not stored then
    redis.call('HSET', cpKey(meta.id), pos, cp)
    stored = cp
    meta.updatedAt = now
  end
  if meta.waiting ~= nil and tostring(meta.waiting.position) == tostring(pos) then dropWaiter(meta) end
  return stored
end

local function delivered(waiting, payload, now)
  return '{"position":' .. waiting.position .. ',"name":' .. cjson.encode(waiting.step) .. ',"kind":' ..
    cjson.encode(waiting.kind) .. ',"value":' .. payload .. ',"finishedAt":' .. now .. '}'
end

local function finishMeta(meta, status, now)
  dropWaiter(meta)
  meta.lease = nil
  meta.wakeAt = nil
  meta.status = status
  meta.finishedAt = now
  meta.updatedAt = now
end

if op == 'create' then
  local id = ARGV[3]
  if redis.call('EXISTS', runKey(id)) == 1 then return 0 end
  local meta = cjson.decode(ARGV[4])
  redis.call('HSET', runKey(id), 'meta', ARGV[4], 'input', ARGV[5])
  redis.call('ZADD', KEYS[1], meta.createdAt, id)
  return 1
end

if op == 'claim' then
  local id, owner, leaseMs, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  local meta = load(id)
  if meta == nil then return {'missing'} end
  local input = redis.call('HGET', runKey(id), 'input')
  if final(meta) then return {'final', cjson.encode(meta), input} end
  if meta.lease ~= nil and meta.lease.owner ~= owner and meta.lease['until'] > now then
    return {'leased', cjson.encode(meta), input}
  end
  meta.lease = {owner = owner, ['until'] = now + leaseMs}
  meta.status = 'running'
  meta.updatedAt = now
  store(meta)
  return {'claimed', cjson.encode(meta), input}
end

if op == 'renew' then
  local id, owner, leaseMs, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  local meta = load(id)
  if not held(meta, owner) then return 0 end
  meta.lease['until'] = now + leaseMs
  store(meta)
  return 1
end

if op == 'save' then
  local id, owner, now, pos, cp = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local meta = load(id)
  if meta == nil then return false end
  if owner ~= '' and not held(meta, owner) then return false end
  local stored = record(meta, pos, cp, now)
  store(meta)
  return stored
end

if op == 'suspend' then
  local id, owner, now, wakeAt, waiterJson = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local meta = load(id)
  if not held(meta, owner) then return {'lost'} end
  if waiterJson ~= '' then
    local waiting = cjson.decode(waiterJson)
    local pair = pairOf(waiting.event, waiting.key)
    local existing = redis.call('HGET', cpKey(id), tostring(waiting.position))
    if existing then return {'checkpoint', existing} end
    local buffer = prefix .. ':buf:' .. pair
    while true do
      local entry = redis.call('LPOP', buffer)
      if not entry then break end
      local bar = string.find(entry, '|', 1, true)
      if tonumber(string.sub(entry, 1, bar - 1)) > now then
        local cp = delivered(waiting, string.sub(entry, bar + 1), now)
        redis.call('HSET', cpKey(id), tostring(waiting.position), cp)
        meta.updatedAt = now
        store(meta)
        return {'checkpoint', cp}
      end
    end
    dropWaiter(meta)
    meta.waiting = waiting
    redis.call('SADD', prefix .. ':wait:' .. pair, id)
    meta.status = 'waiting'
  else
    meta.status = 'sleeping'
  end
  if wakeAt == '' then meta.wakeAt = nil else meta.wakeAt = tonumber(wakeAt) end
  meta.lease = nil
  meta.updatedAt = now
  store(meta)
  return {'suspended'}
end

if op == 'finish' then
  local id, owner, now, status, value = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local meta = load(id)
  if not held(meta, owner) then return 0 end
  finishMeta(meta, status, now)
  if status == 'succeeded' then
    redis.call('HSET', runKey(id), 'result', value)
  else
    meta.error = cjson.decode(value)
  end
  store(meta)
  return 1
end

if op == 'release' then
  local id, owner, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local meta = load(id)
  if meta == nil or meta.lease == nil or meta.lease.owner ~= owner then return 0 end
  meta.lease = nil
  meta.updatedAt = now
  store(meta)
  return 1
end

if op == 'emit' then
  local event, key, payload, now, ttl = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  local pair = pairOf(event, key)
  local waitKey = prefix .. ':wait:' .. pair
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', waitKey)) do
    local meta = load(id)
    if meta ~= nil and meta.waiting ~= nil and meta.waiting.event == event and meta.waiting.key == key then
      local cp = record(meta, tostring(meta.waiting.position), delivered(meta.waiting, payload, now), now)
      if meta.lease == nil or meta.lease['until'] <= now then meta.status = 'running' end
      meta.wakeAt = nil
      store(meta)
      table.insert(out, id)
      table.insert(out, cjson.encode(meta))
      table.insert(out, cp)
    end
  end
  redis.call('DEL', waitKey)
  if #out == 0 then
    local buffer = prefix .. ':buf:' .. pair
    redis.call('RPUSH', buffer, (now + ttl) .. '|' .. payload)
    if redis.call('PTTL', buffer) < ttl then redis.call('PEXPIRE', buffer, ttl) end
  end
  return out
end

if op == 'cancel' then
  local id, reason, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local meta = load(id)
  if meta == nil then return false end
  if not final(meta) then
    finishMeta(meta, 'cancelled', now)
    meta.error = {name = 'WorkflowCancelled', message = reason, code = 'workflow-cancelled'}
    store(meta)
  end
  return cjson.encode(meta)
end

if op == 'rewind' then
  local id, position, now = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local meta = load(id)
  if meta == nil then return false end
  for _, pos in ipairs(redis.call('HKEYS', cpKey(id))) do
    if tonumber(pos) >= position then redis.call('HDEL', cpKey(id), pos) end
  end
  dropWaiter(meta)
  redis.call('HDEL', runKey(id), 'result')
  meta.lease = nil
  meta.wakeAt = nil
  meta.error = nil
  meta.finishedAt = nil
  meta.status = 'running'
  meta.rewinds = meta.rewinds + 1
  meta.updatedAt = now
  store(meta)
  return cjson.encode(meta)
end

return redis.error_reply('workflow.lua: unknown operation ' .. tostring(op))
