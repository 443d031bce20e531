-- length_by_priority.lua: count the ready entries of a queue per priority.
--
-- KEYS[1] high            list  ready HIGH entries
-- KEYS[2] normal          list  ready NORMAL entries
-- KEYS[3] delayed:high    zset  entry -> eta
-- KEYS[4] delayed:normal  zset  entry -> eta
-- KEYS[5] group:state     hash  '#H'/'#N' -> ready grouped entries
--
-- Returns: {high, normal}.
-- Invariants: as length.lua, a delayed entry already due counts as ready (server TIME).
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
local grouped = redis.call('HMGET', KEYS[5], '#H', '#N')
return {
  redis.call('LLEN', KEYS[1]) + redis.call('ZCOUNT', KEYS[3], '-inf', now)
    + (tonumber(grouped[1]) or 0),
  redis.call('LLEN', KEYS[2]) + redis.call('ZCOUNT', KEYS[4], '-inf', now)
    + (tonumber(grouped[2]) or 0),
}
