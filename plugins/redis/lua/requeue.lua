--[[
  requeue: ends one lease and puts its task back, at once (nack with requeue) or later.
  The task never stays parked in the pending list while it waits: a delayed task lives in the
  delayed zset until fetch moves it to its stream.

  KEYS[1] lease zset      KEYS[2] the stream of the delivered entry
  KEYS[3] the target: a stream (mode 'stream') or the delayed zset (mode 'delay')
  ARGV[1] consumer group  ARGV[2] '1' to XDEL the delivered entry  ARGV[3] lease member
  ARGV[4] entry id        ARGV[5] mode: 'stream', 'delay', 'drop' or 'lease'
  ARGV[6] visibility ms ('stream'), delayed member ('delay') or new lease length in ms ('lease')
  ARGV[7] envelope json ('stream'), notBefore ('delay') or the due time to announce ('lease'; the
          client's clock, as consumers compare it with theirs)
  ARGV[8] the delivery count of the caller's receipt
  ARGV[9] the wake channel of the queue ('delay', 'lease'), or absent

  A delayed task that falls due before every one already waiting, and a broadcast re-leased for
  later, PUBLISH their due time on the wake channel: a consumer blocked on the streams then
  shortens its wait to that time (see delay.lua).

  Mode 'lease' keeps the entry pending and only moves its lease expiry (a broadcast redelivered
  to the same subscriber), to the server's now (TIME) plus ARGV[6]: leases run on the server's
  clock (see fetch.lua). A stale receipt (the entry is no longer pending, or was delivered
  again since) changes nothing. Returns 1 when applied, 0 for a stale receipt.
]]
local group, member, id, mode = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
local pending = redis.pcall('XPENDING', KEYS[2], group, id, id, 1)
if pending.err or not pending[1] or tostring(pending[1][4]) ~= ARGV[8] then return 0 end
if mode == 'lease' then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[6]), member)
  if ARGV[9] and changed > 0 then redis.call('PUBLISH', ARGV[9], ARGV[7]) end
  return changed
end
local acked = redis.call('XACK', KEYS[2], group, id)
if ARGV[2] == '1' then redis.call('XDEL', KEYS[2], id) end
redis.call('ZREM', KEYS[1], member)
if mode == 'stream' then
  redis.call('XADD', KEYS[3], '*', 'v', ARGV[6], 'e', ARGV[7])
elseif mode == 'delay' then
  local due = tonumber(ARGV[7])
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], due, ARGV[6])
  if ARGV[9] and (first[2] == nil or due < tonumber(first[2])) then redis.call('PUBLISH', ARGV[9], ARGV[7]) end
end
return acked
