--[[
  set-states: writes task states in one call: SET with a TTL for each, and (unless quiet) PUBLISH
  of the same JSON on the task's channel, for watchers. One script call per batch costs the
  client one command where a pipeline of SET and PUBLISH would cost two per state.

  KEYS[1..n] the task keys
  ARGV[1] TTL (ms)   ARGV[2] '1' for quiet (no PUBLISH)   ARGV[3] the channel prefix
  ARGV[3 + 2i - 1] the id of KEYS[i]   ARGV[3 + 2i] its state as JSON

  Returns the number of states written.
]]
local ttl = ARGV[1]
local quiet = ARGV[2] == '1'
local channelPrefix = ARGV[3]
for i = 1, #KEYS do
  local json = ARGV[3 + 2 * i]
  redis.call('SET', KEYS[i], json, 'PX', ttl)
  if not quiet then redis.call('PUBLISH', channelPrefix .. ARGV[2 + 2 * i], json) end
end
return #KEYS
