--[[
  first-state: a task's first state (the producer's quiet `queued` of attempt 0), written only when
  nothing is stored under its key (anything stored is newer: see sdk/state-order.ts), and then
  listed: its member joins the queued set of the listing index (see set-states.lua). One command
  for the producer, as the plain SET NX it replaces; a state not written adds no member.

  KEYS[1] the task key   KEYS[2] the listing index's queued set
  ARGV[1] the state as JSON   ARGV[2] TTL (ms)   ARGV[3] the index member '<updatedAt, 16 digits>:<id>'

  Returns 1 when written, 0 when a state was already stored.
]]
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return 1
