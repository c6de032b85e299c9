--[[
  busy-read: reads up to ARGV[3] new entries of one stream for a consumer of the shared group and
  records their leases in the same atomic step (the read of a busy queue between fetch script
  runs). No entry reaches the consumer's pending list without its lease: should the reply be lost
  (the connection dropped while it was on the wire, and the client sent the call again), the
  entries of the first run are leased like any other and the fetch script takes them over once
  their lease runs out. Leases run on the server's clock (TIME), as in fetch.lua and lease.lua.

  KEYS[1] lease zset (member "<band>:<entry id>", score = lease expiry, epoch ms)
  KEYS[2] the stream to read
  ARGV[1] consumer group       ARGV[2] consumer name      ARGV[3] max entries
  ARGV[4] the band tag of the stream
  ARGV[5] visibility (ms) of entries without a "v" field

  Returns a flat list of: entry id, lease length (ms, from now on), and the envelope JSON of an
  entry of the usual shape ('v', lease, 'e', envelope), else the entry's field list. A missing
  group is an error (NOGROUP): the caller runs the fetch script next, which makes it again.
]]
local leases, stream = KEYS[1], KEYS[2]
local band = ARGV[4]
local defaultVisibility = tonumber(ARGV[5])
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', stream, '>')
if not read then return {} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

--#include entry

local out = {}
local pushed = 0
local leaseArgs = {}
local leased = 0
local entries = read[1][2]
for j = 1, #entries do
  local entry = entries[j]
  local id, fields = entry[1], entry[2]
  local lease, payload = leaseAndPayload(fields)
  out[pushed + 1] = id
  out[pushed + 2] = lease
  out[pushed + 3] = payload
  pushed = pushed + 3
  leaseArgs[leased + 1] = now + lease
  leaseArgs[leased + 2] = band .. ':' .. id
  leased = leased + 2
  if leased >= 1000 then
    redis.call('ZADD', leases, unpack(leaseArgs))
    leaseArgs = {}
    leased = 0
  end
end
if leased > 0 then redis.call('ZADD', leases, unpack(leaseArgs)) end
return out
