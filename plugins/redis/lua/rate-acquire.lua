--[[
  rate-acquire: takes tokens from a token bucket refilled continuously at limit/interval, using
  the server's clock so every worker agrees.

  KEYS[1] the bucket hash { tokens, at }
  ARGV[1] limit (bucket capacity)   ARGV[2] interval (ms)   ARGV[3] tokens requested

  Returns { allowed (1/0), retry after (ms), tokens left (rounded down) }.
]]
local limit = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local perMs = limit / interval
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if not tokens or not at then
  tokens = limit
else
  tokens = math.min(limit, tokens + math.max(0, now - at) * perMs)
end
local allowed, retryAfter = 0, 0
if tokens >= wanted then
  tokens = tokens - wanted
  allowed = 1
else
  retryAfter = math.ceil((wanted - tokens) / perMs)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(interval * 2 + (limit - tokens) / perMs))
return { allowed, retryAfter, math.floor(tokens + 1e-9) }
