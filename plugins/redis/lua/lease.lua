--[[
  lease: writes leases measured on the server's clock (TIME), like fetch.lua: the expiry of each
  member is the server's now plus its length. A write that waited in the client's offline queue
  through an outage (or was re-sent after a reconnect) still gives its entries their whole length.

  KEYS[1] lease zset
  ARGV[1] 'XX': renew existing leases only (extendLeases; an acked entry gets no lease back);
          'NEW': record the leases of entries just read (a blocking XREADGROUP)
  ARGV[2..] pairs of: lease length (ms), member "<band>:<entry id>"

  Returns the number of leases written.
]]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local args = {}
for i = 2, #ARGV, 2 do
  args[#args + 1] = now + tonumber(ARGV[i])
  args[#args + 1] = ARGV[i + 1]
end
if #args == 0 then return 0 end
local written = 0
for first = 1, #args, 1000 do
  local last = math.min(first + 999, #args)
  if ARGV[1] == 'XX' then
    written = written + redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args, first, last))
  else
    written = written + redis.call('ZADD', KEYS[1], 'CH', unpack(args, first, last))
  end
end
return written
