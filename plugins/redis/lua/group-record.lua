--[[
  group-record: records a member's terminal state in its group (idempotent per member).

  KEYS[1] group members (json array of ids)   KEYS[2] group results hash (member id -> status json)
  ARGV[1] member id   ARGV[2] status json   (the results hash expires with the member list)

  Returns { completed, expected }, or { -1, 0 } when the group is unknown,
  or { -2, expected } when the id is not a member.
]]
local members = redis.call('GET', KEYS[1])
if not members then return { -1, 0 } end
local ids = cjson.decode(members)
local isMember = false
for _, id in ipairs(ids) do
  if id == ARGV[1] then isMember = true break end
end
if not isMember then return { -2, #ids } end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return { redis.call('HLEN', KEYS[2]), #ids }
