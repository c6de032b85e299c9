--[[
  set-states: writes task states in one call, each only when it is not older than the state
  stored under its key (see sdk/state-order.ts): compared by generation, then attempt, then
  phase (queued 0 < running 1 < retried 2 < final 3); an equal position replaces the stored one
  unless that one is final. A write applied is SET with a TTL and (unless quiet) PUBLISHed on the
  task's channel for watchers; a write not applied changes nothing and tells nobody. Writes for
  one key in one call apply in order, so the newest of them stands.

  KEYS[1..n] the task keys
  ARGV[1] TTL (ms)   ARGV[2] '1' for quiet (no PUBLISH)   ARGV[3] the channel prefix
  then for KEYS[i], five values from ARGV[4 + 5(i - 1)]: id, generation, attempt, phase, state as JSON

  Returns the number of states written.
]]
local ttl = ARGV[1]
local quiet = ARGV[2] == '1'
local channelPrefix = ARGV[3]
local FINAL = 3
local PHASES = { queued = 0, running = 1, retried = 2, succeeded = 3, failed = 3, cancelled = 3 }

-- True when a state at (generation, attempt, phase) may replace the stored JSON.
local function supersedes(stored, generation, attempt, phase)
  if not stored then return true end
  local ok, current = pcall(cjson.decode, stored)
  if not ok or type(current) ~= 'table' then return true end
  local g = tonumber(current.generation) or 0
  if generation ~= g then return generation > g end
  local a = tonumber(current.attempt) or 0
  if attempt ~= a then return attempt > a end
  local p = PHASES[current.state] or -1
  if phase ~= p then return phase > p end
  return p ~= FINAL
end

local written = 0
for i = 1, #KEYS do
  local at = 4 + 5 * (i - 1)
  local json = ARGV[at + 4]
  if supersedes(redis.call('GET', KEYS[i]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])) then
    redis.call('SET', KEYS[i], json, 'PX', ttl)
    if not quiet then redis.call('PUBLISH', channelPrefix .. ARGV[at], json) end
    written = written + 1
  end
end
return written
