--[[
  purge: deletes up to ARGV[2] waiting messages of a queue (never the leased ones): undelivered
  stream entries are read by a throwaway consumer and deleted; delayed tasks are dropped.

  KEYS[1] delayed zset   KEYS[2..n] the streams of the queue
  ARGV[1] consumer group   ARGV[2] at most this many entries per call

  Returns the number of messages deleted (call again while it equals ARGV[2]).
]]
local group, limit = ARGV[1], tonumber(ARGV[2])
local purged = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  local key = KEYS[i]
  if purged >= limit then break end
  if redis.call('EXISTS', key) == 1 then
    redis.pcall('XGROUP', 'CREATE', key, group, '0')
    local read = redis.call('XREADGROUP', 'GROUP', group, '__stem_purge', 'COUNT', limit - purged, 'STREAMS', key, '>')
    if read then
      local ids = {}
      for _, entry in ipairs(read[1][2]) do ids[#ids + 1] = entry[1] end
      for first = 1, #ids, 1000 do
        local last = math.min(first + 999, #ids)
        redis.call('XACK', key, group, unpack(ids, first, last))
        redis.call('XDEL', key, unpack(ids, first, last))
      end
      purged = purged + #ids
    end
    redis.call('XGROUP', 'DELCONSUMER', key, group, '__stem_purge')
  end
end
return purged
