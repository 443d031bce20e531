-- length_by_priority.lua: count the ready items of a queue per priority.
--
-- KEYS[1] high            list  ready HIGH ids
-- KEYS[2] normal          list  ready NORMAL ids
-- KEYS[3] delayed:high    zset  id -> eta
-- KEYS[4] delayed:normal  zset  id -> eta
--
-- Returns: {high, normal}.
-- Invariants: as length.lua, a delayed item already due counts as ready (server TIME).
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
return {
  redis.call('LLEN', KEYS[1]) + redis.call('ZCOUNT', KEYS[3], '-inf', now),
  redis.call('LLEN', KEYS[2]) + redis.call('ZCOUNT', KEYS[4], '-inf', now),
}
