--[[
  queue-counts: how many messages of a queue wait (ready or delayed) and how many are leased.

  KEYS[1] lease zset   KEYS[2] delayed zset   KEYS[3..n] the streams of the queue
  Returns { pending, inflight }.
]]
local inflight = redis.call('ZCARD', KEYS[1])
local stored = redis.call('ZCARD', KEYS[2])
for i = 3, #KEYS do stored = stored + redis.call('XLEN', KEYS[i]) end
local pending = stored - inflight
if pending < 0 then pending = 0 end
return { pending, inflight }
