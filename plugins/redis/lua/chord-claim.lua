--[[
  chord-claim: claims the right to fire a chord's callback, or takes over a claim whose lease
  ended before its claimer marked it fired (the claimer died between claiming and firing).

  KEYS[1] the chord's claim: a hash { claimer, leaseEndsAt (epoch ms; absent: no lease), fired ('1') }
  ARGV[1] claimer   ARGV[2] lease ms (0: no lease, the claim holds until it expires)
  ARGV[3] ttl ms (how long the claim is kept)

  Returns { 1, previous claimer or false } when won (false: there was no claim to take over),
  { 0, fired (0|1), claimer, leaseEndsAt or -1 } when lost. Time is the server's (TIME), so
  every worker judges a lease by the same clock.
]]
local kind = redis.call('TYPE', KEYS[1]).ok
-- A plain string is a claim made before claims had leases: it holds until it expires.
if kind == 'string' then return { 0, 0, '', -1 } end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local previous = false
if kind == 'hash' then
  local held = redis.call('HMGET', KEYS[1], 'claimer', 'leaseEndsAt', 'fired')
  local claimer = held[1] or ''
  if held[3] == '1' then return { 0, 1, claimer, -1 } end
  if not held[2] then return { 0, 0, claimer, -1 } end
  local leaseEndsAt = tonumber(held[2])
  if leaseEndsAt > now then return { 0, 0, claimer, leaseEndsAt } end
  previous = claimer
  redis.call('DEL', KEYS[1])
end
local leaseMs = tonumber(ARGV[2])
if leaseMs > 0 then
  redis.call('HSET', KEYS[1], 'claimer', ARGV[1], 'leaseEndsAt', string.format('%d', now + leaseMs))
else
  redis.call('HSET', KEYS[1], 'claimer', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { 1, previous }
