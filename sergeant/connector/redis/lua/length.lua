-- length.lua: count the ready items of a queue, plus the not-yet-due delayed ones if asked.
--
-- KEYS[1] high            list  ready HIGH ids
-- KEYS[2] normal          list  ready NORMAL ids
-- KEYS[3] delayed:high    zset  id -> eta
-- KEYS[4] delayed:normal  zset  id -> eta
-- ARGV[1] '1' to include not-yet-due delayed items, '0' otherwise
--
-- Returns: the count.
-- Invariants: a delayed item already due counts as ready (the next pop or lease
-- would hand it out), judged on server TIME.
local n = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
if ARGV[1] == '1' then
  return n + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
end
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
return n + redis.call('ZCOUNT', KEYS[3], '-inf', now) + redis.call('ZCOUNT', KEYS[4], '-inf', now)
