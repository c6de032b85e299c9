--[[
  settle: acknowledges leased entries of one queue (or one broadcast subscription) in one call:
  XACK, XDEL (queues only: an acknowledged entry is deleted, which is how streams are trimmed),
  and the lease removed.

  KEYS[1]    lease zset
  KEYS[2..n] the streams of the queue
  ARGV[1] consumer group     ARGV[2] '1' to XDEL acknowledged entries, '0' to keep them (broadcasts)
  ARGV[3] number of streams (n - 1), then the band tag of each stream of KEYS[2..n]
  ARGV[4 + streams ..] lease members "<band>:<entry id>"

  Returns the number of entries acknowledged.
]]
local group, delete = ARGV[1], ARGV[2] == '1'
local streams = tonumber(ARGV[3])
local idsOf = {}
local streamOf = {}
for i = 1, streams do
  streamOf[ARGV[3 + i]] = KEYS[1 + i]
  idsOf[ARGV[3 + i]] = {}
end
local members = {}
for i = 4 + streams, #ARGV do
  local member = ARGV[i]
  local band, id = string.match(member, '^(%w):(.+)$')
  if band and idsOf[band] then
    local ids = idsOf[band]
    ids[#ids + 1] = id
  end
  members[#members + 1] = member
end
local acked = 0
for band, ids in pairs(idsOf) do
  for first = 1, #ids, 1000 do
    local last = math.min(first + 999, #ids)
    acked = acked + redis.call('XACK', streamOf[band], group, unpack(ids, first, last))
    if delete then redis.call('XDEL', streamOf[band], unpack(ids, first, last)) end
  end
end
for first = 1, #members, 1000 do
  redis.call('ZREM', KEYS[1], unpack(members, first, math.min(first + 999, #members)))
end
return acked
