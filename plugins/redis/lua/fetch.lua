--[[
  fetch: leases up to ARGV[4] entries of one queue (or one broadcast subscription) to a consumer.
  In order: moves due delayed tasks to their stream, re-leases entries whose lease ran out
  (XCLAIM: their holder died or stopped renewing), takes over pending entries that have had no
  lease for ARGV[7] ms (read by an idle consumer's blocking XREADGROUP that died before it
  recorded the lease; 0 skips this sweep), then reads new entries, highest band first.

  Leases run on the server's clock (TIME), never on ARGV[3]: a call can reach the server long
  after the client made it (it waited in ioredis' offline queue while Redis was down, or was
  re-sent after a reconnect), and a lease measured from the client's stale "now" would be born
  expired, so the next fetch anywhere would lease the entry again while its first holder runs it.

  KEYS[1]    lease zset (member "<band>:<entry id>", score = lease expiry, epoch ms)
  KEYS[2]    delayed zset (member "<band>:<visibility ms>:<envelope json>", score = notBefore)
  KEYS[3..n] the streams to read, highest priority first
  ARGV[1] consumer group       ARGV[2] consumer name
  ARGV[3] the client's now (epoch ms): only for the delayed zset, whose scores are producers' clocks
  ARGV[4] max entries          ARGV[5] visibility (ms) of entries without a "v" field
  ARGV[6] max delayed tasks to promote
  ARGV[7] sweep: pending entries idle this long (ms) without a lease are taken over; 0 = no sweep
  ARGV[8..] the band tag of each stream of KEYS[3..n], in the same order

  Returns { entries } or, when nothing was leased, { {}, wake } where
    entries = flat list of: band, entry id, delivery count, lease length (ms, from now on), and
              the envelope JSON of a new entry of the usual shape ('v', lease, 'e', envelope),
              else the entry's field list
    wake    = { next delayed due (client clock) or '', ms until the next lease expiry or '',
                newest id of each stream or '0-0' }
]]
local leases, delayed = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local defaultVisibility = tonumber(ARGV[5])
local streamOf = {}
local sweepIdle = tonumber(ARGV[7])
local clock = redis.call('TIME')
local leaseNow = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
for i = 3, #KEYS do streamOf[ARGV[i + 5]] = KEYS[i] end

--#include entry

local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
for _, member in ipairs(due) do
  local band, vt, payload = string.match(member, '^(%w):(%d+):(.*)$')
  if band then
    redis.call('XADD', streamOf[band] or KEYS[3], '*', 'v', vt, 'e', payload)
  else
    redis.call('XADD', KEYS[3], '*', 'e', member)
  end
  redis.call('ZREM', delayed, member)
end

local out = {}
local taken = 0
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', leaseNow, 'LIMIT', 0, max)
for _, member in ipairs(expired) do
  local band, id = string.match(member, '^(%w):(.+)$')
  local key = band and streamOf[band]
  local claimed = key and redis.pcall('XCLAIM', key, group, consumer, 0, id) or {}
  local entry = not claimed.err and claimed[1]
  if entry and entry[2] then
    local pending = redis.call('XPENDING', key, group, id, id, 1)
    local count = pending[1] and pending[1][4] or 1
    local lease = visibility(entry[2])
    redis.call('ZADD', leases, leaseNow + lease, member)
    out[#out + 1] = band
    out[#out + 1] = id
    out[#out + 1] = count
    out[#out + 1] = lease
    out[#out + 1] = entry[2]
    taken = taken + 1
  else
    redis.call('ZREM', leases, member)
  end
end

if sweepIdle > 0 then
  for i = 3, #KEYS do
    if taken >= max then break end
    local key, band = KEYS[i], ARGV[i + 5]
    local pending = redis.pcall('XPENDING', key, group, 'IDLE', sweepIdle, '-', '+', max - taken)
    if type(pending) == 'table' and not pending.err then
      for _, info in ipairs(pending) do
        local id = info[1]
        local member = band .. ':' .. id
        if not redis.call('ZSCORE', leases, member) then
          local claimed = redis.call('XCLAIM', key, group, consumer, 0, id)
          local entry = claimed[1]
          if entry and entry[2] then
            local lease = visibility(entry[2])
            redis.call('ZADD', leases, leaseNow + lease, member)
            out[#out + 1] = band
            out[#out + 1] = id
            out[#out + 1] = info[4] + 1
            out[#out + 1] = lease
            out[#out + 1] = entry[2]
            taken = taken + 1
          end
        end
      end
    end
  end
end

local leaseArgs = {}
local leased = 0
local pushed = #out
for i = 3, #KEYS do
  if taken >= max then break end
  local key, band = KEYS[i], ARGV[i + 5]
  local read = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - taken, 'STREAMS', key, '>')
  if type(read) == 'table' and read.err then
    if not string.find(read.err, 'NOGROUP', 1, true) then return redis.error_reply(read.err) end
    redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
    read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - taken, 'STREAMS', key, '>')
  end
  if read then
    local entries = read[1][2]
    for j = 1, #entries do
      local entry = entries[j]
      local id, fields = entry[1], entry[2]
      local lease, payload = leaseAndPayload(fields)
      out[pushed + 1] = band
      out[pushed + 2] = id
      out[pushed + 3] = 1
      out[pushed + 4] = lease
      out[pushed + 5] = payload
      pushed = pushed + 5
      leaseArgs[leased + 1] = leaseNow + lease
      leaseArgs[leased + 2] = band .. ':' .. id
      leased = leased + 2
      taken = taken + 1
      if leased >= 1000 then
        redis.call('ZADD', leases, unpack(leaseArgs))
        leaseArgs = {}
        leased = 0
      end
    end
  end
end
if leased > 0 then redis.call('ZADD', leases, unpack(leaseArgs)) end

if taken > 0 then return { out } end

local wake = {}
local nextDue = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
wake[1] = nextDue[2] or ''
local nextLease = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
wake[2] = nextLease[2] and string.format('%d', math.max(0, tonumber(nextLease[2]) - leaseNow)) or ''
for i = 3, #KEYS do
  local newest = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  wake[i] = newest[1] and newest[1][1] or '0-0'
end
return { out, wake }
