-- flow_hold.lua: hold one workflow step's entry until enough members of its node succeed.
--
-- KEYS: the queue's keys (see _lib.lua), then
-- KEYS[18] the node  hash  'n' -> members needed (absent: not held yet),
--                          'c' -> members recorded, 'r' -> '1' once released,
--                          'p' -> the held entry until released, 'v:<member>' -> value
-- ARGV[1] members needed (at least 1)
-- ARGV[2] TTL of the node in milliseconds, from now
-- ARGV[3] most wake tokens to keep
-- ARGV[4] the entry (header + payload, its priority in the header); '' holds none
--
-- Returns: nothing.
-- Invariants: a node is held once (a later hold changes nothing but its TTL); when
-- the members recorded first already suffice, the entry is pushed now, as push.lua
-- pushes a ready entry; it is never pushed by another call.
local NODE = KEYS[18]
if redis.call('HSETNX', NODE, 'n', ARGV[1]) == 1 then
  if tonumber(redis.call('HGET', NODE, 'c') or '0') >= tonumber(ARGV[1]) then
    redis.call('HSET', NODE, 'r', '1')
    local entry = ARGV[4]
    if entry ~= '' then
      redis.call('RPUSH', is_high(entry) and HIGH or NORMAL, entry)
      wake(1, tonumber(ARGV[3]))
    end
  elseif ARGV[4] ~= '' then
    redis.call('HSET', NODE, 'p', ARGV[4])
  end
end
redis.call('PEXPIRE', NODE, ARGV[2])
