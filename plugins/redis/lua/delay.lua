--[[
  delay: puts a task in a queue's delayed zset and, when it falls due before every task already
  there, PUBLISHes its due time on the queue's wake channel, so that a consumer blocked on the
  queue's streams shortens its wait (it would otherwise wake no sooner than it planned from the
  earliest entry it saw). A later entry needs no signal: a consumer's wait already ends by the
  earlier one, and its fetch then finds the next.

  KEYS[1] delayed zset
  ARGV[1] notBefore (epoch ms)   ARGV[2] member "<band>:<visibility ms>:<envelope json>"
  ARGV[3] wake channel

  Returns 1 when the due time was published, 0 otherwise.
]]
local due = tonumber(ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[1], due, ARGV[2])
if first[2] == nil or due < tonumber(first[2]) then
  redis.call('PUBLISH', ARGV[3], ARGV[1])
  return 1
end
return 0
